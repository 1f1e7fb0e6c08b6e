"""Frames in: a video file OpenCV reads, or a folder of frame images, checked before any long work.

:func:`open_source` validates the input (readable, not empty, a usable frame rate) and returns a
:class:`FrameSource` that yields RGB uint8 frames one at a time, so a long video is never held whole
in memory (a 20 s, 200 fps, 640x480 video is 3.7 GB of pixels; its face crops are a twentieth of that).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class InferenceError(ValueError):
    """Bad input to :mod:`kerasmer.inference`; the message is one line naming the file and what is wrong."""


@dataclass(frozen=True)
class FrameSource:
    """A checked video or frame folder.

    Attributes:
        path: the video file or the folder.
        fps: frames per second (from the container, or given).
        num_frames: number of frames (for a video, the container's count, which may be an estimate; 0 when
            the container does not say).
        size: ``(height, width)`` of the first frame.
        files: the frame files in temporal order (folders only).
    """

    path: Path
    fps: float
    num_frames: int
    size: tuple[int, int]
    files: tuple[Path, ...] | None = None

    @property
    def kind(self) -> str:
        return "frames" if self.files is not None else "video"

    def frames(self) -> Iterator[np.ndarray]:
        """Yield the frames in order as RGB uint8 ``(H, W, 3)``.

        Raises:
            InferenceError: a frame file that cannot be decoded, or of another size than the first.
        """
        if self.files is None:
            yield from _video_frames(self.path)
            return
        for f in self.files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise InferenceError(f"{f}: cannot be decoded as an image")
            if img.shape[:2] != self.size:
                raise InferenceError(f"{f}: frame size {img.shape[:2]} differs from the first frame's {self.size}")
            yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def frame_at(self, index: int) -> np.ndarray | None:
        """Frame ``index`` as RGB uint8, or ``None`` if it cannot be read (a quick probe, not for streaming)."""
        if self.files is not None:
            img = cv2.imread(str(self.files[index]), cv2.IMREAD_COLOR)
        else:
            cap = cv2.VideoCapture(str(self.path))
            try:
                cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
                ok, img = cap.read()
            finally:
                cap.release()
            img = img if ok else None
        return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _natural_key(path: Path):
    """img2.jpg before img10.jpg: digits compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def check_fps(fps, path, *, source: str) -> float:
    """``fps`` as a positive float, or an :class:`InferenceError` naming ``path`` and where the value came from."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        hint = "pass --fps (fps=...)" if source != "--fps" else "give a positive number"
        raise InferenceError(f"{path}: frame rate {fps!r} from {source} is missing or not positive; {hint}")
    return value


def open_source(path: str | os.PathLike, *, fps: float | None = None) -> FrameSource:
    """Check a video file or a folder of frames and describe it, before any long work.

    Args:
        path: a video file OpenCV can read (``.avi``, ``.mp4``, ...) or a folder of frame images
            (sorted naturally: ``img2`` before ``img10``).
        fps: frames per second; overrides the container's.  Required for a folder of frames.

    Returns:
        A :class:`FrameSource`.

    Raises:
        InferenceError: a missing path, an unreadable or empty video, a folder without images, or a frame
            rate that is 0, negative or missing (one line naming the file).

    Example:
        >>> src = open_source("subject01.avi")  # doctest: +SKIP
        >>> src.fps, src.num_frames  # doctest: +SKIP
        (200.0, 4000)
    """
    path = Path(path)
    if not path.exists():
        raise InferenceError(f"{path}: no such video file or frame folder")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not files:
            raise InferenceError(f"{path}: the folder holds no frame images ({', '.join(IMAGE_SUFFIXES)})")
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise InferenceError(f"{files[0]}: cannot be decoded as an image")
        rate = check_fps(fps, path, source="--fps" if fps is not None else "a frame folder (it has none)")
        return FrameSource(path, rate, len(files), first.shape[:2], tuple(files))
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InferenceError(f"{path}: OpenCV cannot open it as a video (unreadable or not a video)")
        ok, first = cap.read()
        if not ok or first is None:
            raise InferenceError(f"{path}: the video has no readable frame (empty or corrupt)")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        container_fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    rate = check_fps(fps, path, source="--fps") if fps is not None else check_fps(
        container_fps, path, source="the video container")
    return FrameSource(path, rate, max(count, 0), first.shape[:2])


__all__ = ["FrameSource", "IMAGE_SUFFIXES", "InferenceError", "check_fps", "open_source"]
