"""Reading a whole test video into memory, as a client would (OpenCV)."""

import cv2
import numpy as np


def read_video(path, *, rgb: bool = False) -> np.ndarray:
    """All frames of ``path`` as ``(T, H, W, 3)`` uint8: OpenCV's BGR, or RGB with ``rgb=True``."""
    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if rgb else frame)
    cap.release()
    return np.stack(frames)
