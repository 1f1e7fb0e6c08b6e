"""Frame integrity, checked before training starts (the preflight).

A damaged frame used to be found only when ``tf.data`` decoded it, after
training, inside a thread pool (issue 11).  :func:`preflight` checks, for every
row a run will use (training, validation *and* test subjects), that each frame
onset..offset exists and is complete, and raises one :class:`FrameError`
listing every damaged frame, one line each, naming the file, the clip and the
annotation row, before any model is built.

"Complete" is checked from the file's ends, without decoding (a tenth of a
millisecond a frame): a JPEG must start with ``FF D8`` and end with the
end-of-image marker ``FF D9`` (trailing zero padding allowed); a PNG must end
with its ``IEND`` chunk; a BMP must be as long as its header says.  Other
formats are decoded with OpenCV.  A truncated JPEG, which OpenCV decodes
half grey with only a libjpeg warning on stderr, fails here.

With ``cache_dir`` the verdict is kept under ``<cache_dir>/preflight/``, keyed
by each frame's path, size and modification time, so a second run over the same
files reads no frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from kerasmer.core.atomic import atomic_write_text
from kerasmer.data.schema import AnnotationError

PREFLIGHT_FORMAT = 1
_TAIL = 64  # bytes read from a file's end: markers sit there, after at most some zero padding
_PNG_END = b"IEND\xaeB`\x82"


class FrameError(AnnotationError):
    """A frame a run needs is missing, truncated or undecodable; the message lists each one."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        ValueError.__init__(self, f"{len(self.lines)} damaged or missing frame(s):\n" + "\n".join(self.lines))
        self.dataset, self.file, self.row = "frames", self.lines[0] if self.lines else "", None


def bytes_problem(head: bytes, tail: bytes, size: int) -> str | None:
    """What is wrong with an image file, judged from its first and last bytes; None if it looks complete.

    Args:
        head: the file's first bytes (at least 8).
        tail: the file's last bytes (up to 64).
        size: the file's size in bytes.

    Returns:
        A short description (``"truncated JPEG: no end-of-image marker FF D9"``), or None;
        ``"unknown"`` for a format this function does not judge.

    Example:
        >>> bytes_problem(b"\\xff\\xd8\\xff\\xe0", b"\\x00\\x01", 4)
        'truncated JPEG: no end-of-image marker FF D9'
    """
    if size == 0:
        return "empty file"
    if head[:2] == b"\xff\xd8":
        return None if tail.rstrip(b"\x00").endswith(b"\xff\xd9") else "truncated JPEG: no end-of-image marker FF D9"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return None if tail.endswith(_PNG_END) else "truncated PNG: no IEND chunk at the end"
    if head[:2] == b"BM" and len(head) >= 6:
        declared = int.from_bytes(head[2:6], "little")
        return None if size >= declared else f"truncated BMP: {size} of {declared} bytes"
    return "unknown"


def frame_problem(path) -> str | None:
    """Check one frame file; returns what is wrong with it, or None.

    Args:
        path: the image file.

    Returns:
        ``"missing"``, a truncation message from :func:`bytes_problem`, ``"cannot be decoded"``, or None.

    Example:
        >>> frame_problem("/no/such/img1.jpg")
        'missing'
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, size - _TAIL))
            tail = f.read()
    except OSError:
        return "missing"
    problem = bytes_problem(head, tail, size)
    if problem == "unknown":  # not judged from its ends: decode it
        return None if cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None else "cannot be decoded"
    return problem


def _clip_frames(row) -> tuple[list[str], list[str]]:
    """``(paths to check, lines for frame numbers onset..offset that have no file)`` of one row."""
    numbers = [int(n) for n in row["frame_numbers"]]
    by_number = dict(zip(numbers, row["frame_paths"]))
    onset, offset = int(row["onset"]), int(row["offset"])
    missing = [n for n in range(onset, offset + 1) if n not in by_number]
    paths = [by_number[n] for n in range(onset, offset + 1) if n in by_number]
    where = f"clip {row['subject']}/{row['clip']} ({row['source']})"
    return paths, [f"[{row['dataset']}] frame {n}: not in the clip folder; {where}" for n in missing]


def _digest(df) -> str:
    h = hashlib.sha256(f"preflight {PREFLIGHT_FORMAT}".encode())
    for _, row in df.iterrows():
        for p in _clip_frames(row)[0]:
            try:
                st = os.stat(p)
                h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()[:32]


def preflight(df, *, cache_dir=None, log=None) -> dict:
    """Check every frame onset..offset of every row; raise before training if any is missing or damaged.

    Args:
        df: reader rows (``dataset``, ``subject``, ``clip``, ``onset``, ``offset``, ``frame_paths``,
            ``frame_numbers``, ``source``): every row a run will use, test subjects included.
        cache_dir: the run's preprocessing cache folder; a passing verdict is kept there.
        log: ``fn(str)`` for one summary line, or None.

    Returns:
        ``{"clips", "frames", "seconds", "cached"}``.

    Raises:
        FrameError: one line per missing or damaged frame, naming the file, the clip and the row.

    Example:
        >>> from kerasmer.data import make_synthetic, read_dataset
        >>> preflight(read_dataset("casme2", make_synthetic("/tmp/syn")))  # doctest: +SKIP
        {'clips': 96, 'frames': 2976, 'seconds': 0.2, 'cached': False}
    """
    start = time.perf_counter()
    marker = Path(cache_dir) / "preflight" / f"{_digest(df)}.json" if cache_dir is not None else None
    if marker is not None and marker.is_file():
        return json.loads(marker.read_text(encoding="utf-8")) | {"cached": True}
    lines, frames = [], 0
    for _, row in df.iterrows():
        paths, missing = _clip_frames(row)
        lines += missing
        frames += len(paths)
        for p in paths:
            problem = frame_problem(p)
            if problem is not None:
                lines.append(f"[{row['dataset']}] {p}: {problem}; clip {row['subject']}/{row['clip']} "
                             f"({row['source']})")
    if lines:
        raise FrameError(lines)
    verdict = {"clips": int(len(df)), "frames": frames, "seconds": round(time.perf_counter() - start, 3),
               "cached": False}
    if marker is not None:
        atomic_write_text(marker, json.dumps(verdict))
    if log is not None:
        log(f"preflight: {frames} frames of {len(df)} clips complete ({verdict['seconds']} s)")
    return verdict


def decode_strict(path, *, dataset: str = "frames", flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image with OpenCV, refusing a truncated JPEG/PNG/BMP that OpenCV would decode part grey.

    Args:
        path: the image file.
        dataset: dataset name, for the error message.
        flags: OpenCV ``imread`` flags.

    Returns:
        The image as OpenCV returns it (BGR).

    Raises:
        AnnotationError: missing, truncated or undecodable; names the file.

    Example:
        >>> img = decode_strict("CASME2-RAW/sub01/EP02_01f/img46.jpg")  # doctest: +SKIP
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        raise AnnotationError(dataset, path, "cannot read image (missing)") from None
    problem = bytes_problem(data[:16].tobytes(), data[-_TAIL:].tobytes(), int(data.size))
    img = None if problem not in (None, "unknown") else cv2.imdecode(data, flags)
    if img is None:
        raise AnnotationError(dataset, path, f"cannot read image ({problem or 'cannot be decoded'})")
    return img


__all__ = ["FrameError", "bytes_problem", "decode_strict", "frame_problem", "preflight"]
