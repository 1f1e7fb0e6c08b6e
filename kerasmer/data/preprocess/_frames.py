"""Small frame helpers shared by face cropping, apex spotting, flow and the cache.

Frames travel as numpy arrays: one frame is ``(H, W)`` or ``(H, W, C)``, a clip
is ``(T, H, W)`` or ``(T, H, W, C)`` (or a list of frames).  Colour frames are
in OpenCV's BGR order when they come from :func:`read_frames`; the functions
here never care which colour order is used except when converting to grey,
where BGR and RGB give almost the same luminance for faces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


def clip_name(row) -> str:
    """``"dataset/subject/clip"`` of an annotation row, for error messages."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    parts = [str(get(k, "?")) for k in ("dataset", "subject", "clip")]
    return "/".join(parts)


def read_frames(paths: Sequence, *, gray: bool = False, clip_id: str | None = None) -> np.ndarray:
    """Decode image files into a ``(T, H, W, 3)`` uint8 BGR (or ``(T, H, W)`` grey) array.

    Args:
        paths: image file paths, in temporal order.
        gray: decode as single-channel grey.
        clip_id: named in error messages.

    Returns:
        The stacked frames.

    Raises:
        ValueError: no paths, an unreadable file (named), or frames of different sizes.

    Example:
        >>> clip = read_frames(row["frame_paths"][:5], clip_id="casme2/01/EP02_01f")  # doctest: +SKIP
    """
    where = f"clip {clip_id}: " if clip_id else ""
    if len(paths) == 0:
        raise ValueError(f"{where}no frames to read (zero-length clip)")
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    frames = []
    for p in paths:
        img = cv2.imread(str(p), flag)
        if img is None:
            exists = Path(p).exists()
            why = "cannot be decoded as an image" if exists else "does not exist"
            raise ValueError(f"{where}frame file {p} {why}")
        if frames and img.shape != frames[0].shape:
            raise ValueError(f"{where}frame {p} has shape {img.shape}, the clip's first frame {frames[0].shape}")
        frames.append(img)
    return np.stack(frames)


def as_clip(frames, *, what: str = "frames", clip_id: str | None = None) -> np.ndarray:
    """A clip as an array of at least one frame, ``(T, H, W)`` or ``(T, H, W, C)``.

    Args:
        frames: array or list of frames.
        what: argument name for error messages.
        clip_id: named in error messages.

    Returns:
        ``np.ndarray`` view/copy of the frames.
    """
    where = f"clip {clip_id}: " if clip_id else ""
    arr = np.asarray(frames) if not isinstance(frames, np.ndarray) else frames
    if arr.ndim not in (3, 4) or arr.shape[0] == 0:
        raise ValueError(
            f"{where}{what} must be a non-empty clip of shape (T, H, W) or (T, H, W, C), got shape {arr.shape}"
        )
    return arr


def to_gray_u8(frame: np.ndarray) -> np.ndarray:
    """One frame as a contiguous ``(H, W)`` uint8 grey image (what OpenCV's detectors and flow want).

    Float frames are taken to be in [0, 1] when their maximum is at most 1, else in [0, 255].
    """
    f = np.asarray(frame)
    if f.ndim == 3:
        if f.shape[2] == 1:
            f = f[..., 0]
        elif f.shape[2] in (3, 4):
            f = cv2.cvtColor(np.ascontiguousarray(f[..., :3]), cv2.COLOR_BGR2GRAY) if f.dtype == np.uint8 else (
                f[..., :3].astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)
            )
        else:
            raise ValueError(f"a frame must have 1, 3 or 4 channels, got shape {np.asarray(frame).shape}")
    elif f.ndim != 2:
        raise ValueError(f"a frame must be (H, W) or (H, W, C), got shape {f.shape}")
    if f.dtype != np.uint8:
        f = f.astype(np.float32)
        if f.size and float(np.nanmax(f)) <= 1.0:
            f = f * 255.0
        f = np.clip(np.nan_to_num(f), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(f)
