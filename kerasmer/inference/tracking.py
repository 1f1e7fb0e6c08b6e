"""Face tracking through a long video: detect once, re-detect now and then, one fixed crop per window.

A micro-expression moves the face by a pixel or two, so a crop that follows the detector box frame by frame
would put the detector's jitter (several pixels) into the motion signal.  :class:`FaceTracker` therefore keeps
one crop for a whole *window* of frames.  It re-detects every ``redetect_s`` seconds; a new window starts
only when the face has drifted by more than ``drift`` of its box side (a head movement, which the spotter
must see as a cut, not as motion) or when the face comes back after being lost.  Detector jitter below
``drift`` is ignored: that hysteresis is the smoothing.  Frames where the detector finds no face form a
*no-face stretch*, reported, never a failure.

OpenCV's trackers (``cv2.TrackerMIL``) are in the headless wheel, but they re-estimate the box on every frame,
which is exactly the jitter the fixed crop avoids; a detection every few hundred milliseconds is enough and
costs less.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerasmer.data.preprocess.face import FaceCropper, apply_crop


@dataclass
class FaceWindow:
    """Frames ``start..stop-1`` cropped with one crop.

    Attributes:
        start, stop: frame indices into the video (``stop`` excluded).
        box: the detection ``(x, y, w, h)`` in frame pixels the crop comes from; ``None`` when the frames are
            used as given (``face=None``).
        crops: ``(stop - start, h, w, 3)`` RGB uint8.
    """

    start: int
    stop: int
    box: tuple | None
    crops: np.ndarray = field(repr=False)


@dataclass
class _Open:
    start: int
    box: tuple | None
    matrix: np.ndarray | None
    size: tuple | None
    crops: list = field(default_factory=list)


def box_drift(a, b) -> float:
    """How far box ``b`` is from box ``a``: the larger of the centre shift and the size change, in ``a``'s sides.

    Example:
        >>> box_drift((0, 0, 100, 100), (10, 0, 100, 100))
        0.1
    """
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    side = max(aw, ah)
    shift = np.hypot((bx + bw / 2) - (ax + aw / 2), (by + bh / 2) - (ay + ah / 2)) / side
    return float(max(shift, abs(max(bw, bh) / side - 1.0)))


class FaceTracker:
    """Crop the face of every frame of a video, one crop per window.

    Args:
        detector: ``"haar"``/``"mtcnn"`` (see :class:`~kerasmer.data.preprocess.face.FaceCropper`) or ``None``
            when the frames are already face crops (one window, frames as given).
        fps: the video's frame rate (for ``redetect_s``).
        redetect_s: seconds between re-detections while a face is tracked.
        drift: re-detected box moved or resized by more than this fraction of its side -> new window.
        crop_size: side of the square crops (pixels), large enough for the spotter's flow.
        margin, min_face: as for :class:`FaceCropper`.

    Example:
        >>> tracker = FaceTracker("haar", fps=200)  # doctest: +SKIP
        >>> for i, frame in enumerate(frames):  # doctest: +SKIP
        ...     tracker.feed(i, frame)
        >>> windows, no_face = tracker.finish()  # doctest: +SKIP
    """

    def __init__(self, detector: str | None = "haar", *, fps: float, redetect_s: float = 0.5, drift: float = 0.15,
                 crop_size: int = 160, margin: float = 0.2, min_face: float = 0.15):
        if redetect_s <= 0 or drift <= 0 or crop_size < 8:
            raise ValueError(f"FaceTracker: redetect_s ({redetect_s}) and drift ({drift}) must be positive and "
                             f"crop_size ({crop_size}) at least 8")
        self.cropper = None if detector is None else FaceCropper(detector, margin=margin, size=crop_size,
                                                                  color="rgb", min_face=min_face)
        self.step = max(1, round(fps * redetect_s))
        self.lost_step = max(1, self.step // 4)  # look for a lost face more often than for drift
        self.drift = float(drift)
        self.windows: list[FaceWindow] = []
        self.no_face: list[tuple[int, int]] = []
        self.detections = 0
        self._open: _Open | None = None
        self._lost_since: int | None = None
        self._next_check = 0
        self._count = 0

    def feed(self, index: int, frame: np.ndarray) -> None:
        """Take frame ``index`` (RGB uint8), in order from 0."""
        self._count = index + 1
        if self.cropper is None:
            if self._open is None:
                self._open = _Open(index, None, None, None)
            self._open.crops.append(frame)
            return
        if self._open is None or index >= self._next_check:
            self._check(index, frame)
        if self._open is not None:
            self._open.crops.append(apply_crop(frame[None], self._open.matrix, self._open.size)[0])

    def _check(self, index: int, frame: np.ndarray) -> None:
        if self._open is None and self._lost_since is not None and index < self._next_check:
            return
        found = self.cropper.detect(frame)
        self.detections += 1
        if found is None:
            self._close(index)
            if self._lost_since is None:
                self._lost_since = index
            self._next_check = index + self.lost_step
            return
        if self._open is not None and box_drift(self._open.box, found["box"]) > self.drift:
            self._close(index)
        if self._open is None:
            if self._lost_since is not None:
                self.no_face.append((self._lost_since, index))
                self._lost_since = None
            matrix, size = self.cropper.crop_matrix(found)
            self._open = _Open(index, tuple(found["box"]), matrix, size)
        self._next_check = index + self.step

    def _close(self, index: int) -> None:
        if self._open is not None and self._open.crops:
            self.windows.append(FaceWindow(self._open.start, index, self._open.box, np.stack(self._open.crops)))
        self._open = None

    def finish(self) -> tuple[list[FaceWindow], list[tuple[int, int]]]:
        """Close the last window; return ``(windows, no-face stretches as (start, stop) frame ranges)``."""
        self._close(self._count)
        if self._lost_since is not None:
            self.no_face.append((self._lost_since, self._count))
            self._lost_since = None
        return self.windows, self.no_face


def probe_face(source, cropper: FaceCropper, *, samples: int = 8) -> bool:
    """Whether a face is found on any of ``samples`` frames spread over the video: a quick check before the long run.

    Args:
        source: a :class:`~kerasmer.inference.source.FrameSource`.
        cropper: the detector to use (the tracker's).
        samples: frames to try, evenly spaced from the first to the last.

    Returns:
        ``True`` as soon as one sampled frame has a face.

    Example:
        >>> probe_face(open_source("video.avi"), FaceCropper("haar"))  # doctest: +SKIP
        True
    """
    for index in np.unique(np.linspace(0, max(source.num_frames - 1, 0), samples).astype(int)):
        frame = source.frame_at(int(index))
        if frame is not None and cropper.detect(frame) is not None:
            return True
    return False


__all__ = ["FaceTracker", "FaceWindow", "box_drift", "probe_face"]
