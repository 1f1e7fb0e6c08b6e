"""Face detection and cropping: detect once per clip, apply the same crop to every frame.

Micro-expressions are movements of a few pixels, so the crop must not jitter
from frame to frame: a per-frame detector box moves by more than the
expression itself.  :class:`FaceCropper` therefore detects the face once, on
the onset frame (falling back to later frames only when the onset frame has no
detectable face), turns the box into one affine transform, and warps every
frame of the clip with it.

Detectors:

* ``"haar"`` (default): OpenCV's frontal-face Haar cascade, shipped with
  ``opencv-python-headless<5`` (OpenCV 5 wheels no longer ship the cascades).
* ``"mtcnn"``: the ``mtcnn`` package (optional extra, ``pip install
  kerasmer[mtcnn]``); its eye landmarks rotate the crop so that the eyes are
  level (eye-based alignment).
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from kerasmer.core.precision import FROZEN_WEIGHTS_ENV, frozen_weights_assumed
from kerasmer.data.preprocess._frames import as_clip, to_gray_u8

DETECTORS = ("haar", "mtcnn")
# Detection runs on a copy whose longer side is at most this; the box is scaled
# back.  Faces in MER recordings fill a large part of the frame, so nothing is lost.
_DETECT_MAX_SIDE = 640


class NoFaceError(ValueError):
    """No face was found in any frame of a clip; the message names the clip."""


class FaceCropper:
    """Detect a face once per clip and crop every frame of the clip the same way.

    Args:
        detector: ``"haar"`` (OpenCV cascade, default) or ``"mtcnn"`` (optional
            extra, with eye-based alignment).
        margin: extra border around the detected box, as a fraction of the box
            side added on each side (``0.2`` makes a 1.4x wider crop).
        size: output ``(height, width)`` or one int for a square; ``None`` keeps
            the crop's own size (the detected box plus margin).
        align: rotate so the eyes are level; only possible with ``"mtcnn"``
            (``None``: on for mtcnn, off for haar).
        color: channel order of colour frames, ``"bgr"`` (as read by OpenCV) or
            ``"rgb"``; the mtcnn detector needs to know.
        min_face: smallest face side to detect, as a fraction of the frame's
            shorter side.

    Example:
        >>> cropper = FaceCropper(size=112, margin=0.15)
        >>> faces = cropper.crop_clip(frames, clip_id="casme2/01/EP02_01f")  # doctest: +SKIP
        >>> faces.shape                                                      # doctest: +SKIP
        (T, 112, 112, 3)
    """

    def __init__(
        self,
        detector: str = "haar",
        *,
        margin: float = 0.2,
        size: int | Sequence[int] | None = 112,
        align: bool | None = None,
        color: str = "bgr",
        min_face: float = 0.15,
    ):
        if detector not in DETECTORS:
            raise ValueError(f"FaceCropper: detector must be one of {DETECTORS}, got {detector!r}")
        if not (isinstance(margin, (int, float)) and 0 <= margin <= 2):
            raise ValueError(f"FaceCropper: margin must be a fraction in [0, 2], got {margin!r}")
        if size is not None:
            size = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"FaceCropper: size must be an int or (height, width) of positive ints, got {size!r}")
        if align and detector != "mtcnn":
            raise ValueError("FaceCropper: align=True needs eye landmarks, which only detector='mtcnn' gives")
        if color not in ("bgr", "rgb"):
            raise ValueError(f"FaceCropper: color must be 'bgr' or 'rgb', got {color!r}")
        if not 0 < min_face < 1:
            raise ValueError(f"FaceCropper: min_face must be a fraction in (0, 1), got {min_face!r}")
        self.detector, self.margin, self.size = detector, float(margin), size
        self.align = (detector == "mtcnn") if align is None else bool(align)
        self.color, self.min_face = color, float(min_face)
        self._impl = None  # the OpenCV cascade or the MTCNN instance, built on first use

    def config(self) -> dict:
        """The settings as a JSON-friendly dict (part of the preprocessing-cache key)."""
        return {"detector": self.detector, "margin": self.margin, "size": self.size, "align": self.align,
                "color": self.color, "min_face": self.min_face}

    def __repr__(self) -> str:
        return "FaceCropper(" + ", ".join(f"{k}={v!r}" for k, v in self.config().items()) + ")"

    # ---------------------------------------------------------------- detection

    def _detector(self):
        if self._impl is None:
            if self.detector == "haar":
                path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
                cascade = cv2.CascadeClassifier(path)
                if cascade.empty():
                    raise RuntimeError(
                        f"FaceCropper: cannot load OpenCV's Haar cascade {path}; install "
                        "opencv-python-headless<5 (OpenCV 5 wheels ship no cascades)"
                    )
                self._impl = cascade
            else:
                if frozen_weights_assumed():  # MTCNN calls its networks eagerly: cached weights would be wrong
                    raise RuntimeError(
                        f"FaceCropper(detector='mtcnn') cannot run with {FROZEN_WEIGHTS_ENV}=1: MTCNN runs its "
                        "networks eagerly, where one oneDNN kernel (and its cached weights) serves every conv "
                        "of the same shape; unset it, or use detector='haar'"
                    )
                try:
                    from mtcnn import MTCNN  # optional extra, imported only when asked for
                except ImportError as err:
                    raise ImportError(
                        "FaceCropper(detector='mtcnn') needs the optional mtcnn package: "
                        "pip install kerasmer[mtcnn]"
                    ) from err
                self._impl = MTCNN()
        return self._impl

    def detect(self, frame: np.ndarray) -> dict | None:
        """Find the largest face in one frame.

        Args:
            frame: ``(H, W)`` or ``(H, W, C)`` image.

        Returns:
            ``{"box": (x, y, w, h)}`` in frame pixels, plus ``"left_eye"`` and
            ``"right_eye"`` ``(x, y)`` for mtcnn; ``None`` if no face is found.
        """
        frame = np.asarray(frame)
        h, w = frame.shape[:2]
        scale = min(1.0, _DETECT_MAX_SIDE / max(h, w))
        if self.detector == "haar":
            gray = to_gray_u8(frame)
            if scale < 1:
                gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            gray = cv2.equalizeHist(gray)  # lab recordings are often dim; the cascade wants contrast
            side = max(20, int(self.min_face * min(gray.shape)))
            boxes = self._detector().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
            if len(boxes) == 0:
                return None
            x, y, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
            return {"box": tuple(float(v) / scale for v in (x, y, bw, bh))}
        rgb = _to_rgb_u8(frame, self.color)
        if scale < 1:
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        smallest = self.min_face * min(rgb.shape[:2])
        faces = [f for f in self._detector().detect_faces(rgb) if min(f["box"][2:]) >= smallest]
        if not faces:
            return None
        best = max(faces, key=lambda f: f["box"][2] * f["box"][3])
        out = {"box": tuple(float(v) / scale for v in best["box"])}
        for k in ("left_eye", "right_eye"):
            if k in best.get("keypoints", {}):
                out[k] = tuple(float(v) / scale for v in best["keypoints"][k])
        return out

    def find_face(self, frames, *, clip_id: str | None = None) -> tuple[int, dict]:
        """Detect on the first frame, else on the next ones; error if no frame has a face.

        Args:
            frames: the clip, onset frame first.
            clip_id: named in the error.

        Returns:
            ``(index of the frame the face was found on, detection dict)``.

        Raises:
            NoFaceError: no face in any frame; names the clip.
        """
        clip = as_clip(frames, clip_id=clip_id)
        for i in range(len(clip)):
            found = self.detect(clip[i])
            if found is not None:
                return i, found
        raise NoFaceError(
            f"clip {clip_id or '<unnamed>'}: no face found by the {self.detector!r} detector in any of its "
            f"{len(clip)} frame(s) (shape {clip.shape[1:]}); check the frames, or lower min_face={self.min_face}"
        )

    # ---------------------------------------------------------------- cropping

    def crop_matrix(self, detection: dict) -> tuple[np.ndarray, tuple[int, int]]:
        """The 2x3 affine matrix (frame -> crop) and output ``(height, width)`` of a detection."""
        x, y, bw, bh = detection["box"]
        cx, cy = x + bw / 2.0, y + bh / 2.0
        side = max(bw, bh) * (1.0 + 2.0 * self.margin)
        out_h, out_w = self.size if self.size is not None else (max(1, round(side)),) * 2
        scale = out_w / side  # the crop is side wide; its height follows the output's aspect
        angle = 0.0
        if self.align and "left_eye" in detection and "right_eye" in detection:
            (lx, ly), (rx, ry) = detection["left_eye"], detection["right_eye"]
            angle = math.degrees(math.atan2(ry - ly, rx - lx))
        return aligned_matrix((cx, cy), angle, scale, (out_h, out_w)), (out_h, out_w)

    def crop_clip(self, frames, *, clip_id: str | None = None, return_detection: bool = False):
        """Crop every frame of a clip with the crop found on its onset frame.

        Args:
            frames: ``(T, H, W)`` or ``(T, H, W, C)`` array (or list of frames),
                onset frame first.
            clip_id: named in errors (``"casme2/01/EP02_01f"``).
            return_detection: also return the detection dict and the index of
                the frame it was made on.

        Returns:
            ``(T, out_h, out_w[, C])`` array of the input's dtype (and
            ``(index, detection)`` when ``return_detection``).

        Raises:
            NoFaceError: no face in any frame of the clip.
        """
        clip = as_clip(frames, clip_id=clip_id)
        index, det = self.find_face(clip, clip_id=clip_id)
        m, (out_h, out_w) = self.crop_matrix(det)
        out = apply_crop(clip, m, (out_h, out_w))
        return (out, (index, det)) if return_detection else out

    __call__ = crop_clip


def aligned_matrix(center, angle_deg: float, scale: float, out_size) -> np.ndarray:
    """Affine matrix that rotates by ``angle_deg`` about ``center``, scales, and centres it in ``out_size``.

    With ``angle_deg`` the angle of the line from the left to the right eye,
    the eyes come out level.

    Args:
        center: ``(x, y)`` in the source frame; lands on the output's centre.
        angle_deg: rotation in degrees (OpenCV convention).
        scale: output pixels per source pixel.
        out_size: ``(height, width)`` of the output.

    Returns:
        ``(2, 3)`` float64 matrix for ``cv2.warpAffine``.

    Example:
        >>> m = aligned_matrix((100, 80), 0.0, 0.5, (64, 64))
        >>> (m @ [100, 80, 1]).tolist()
        [32.0, 32.0]
    """
    out_h, out_w = out_size
    m = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(angle_deg), float(scale))
    m[0, 2] += out_w / 2.0 - center[0]
    m[1, 2] += out_h / 2.0 - center[1]
    return m


def apply_crop(frames: np.ndarray, matrix: np.ndarray, out_size) -> np.ndarray:
    """Warp every frame with the same affine ``matrix`` into ``out_size`` = ``(height, width)``.

    Parts of the crop outside the frame replicate the frame's border (a black
    border would be a strong fake edge for the optical flow and the CNN).
    """
    out_h, out_w = out_size
    interp = cv2.INTER_AREA if abs(np.linalg.det(matrix[:, :2])) < 1 else cv2.INTER_LINEAR
    outs = []
    for f in frames:
        src = np.ascontiguousarray(f)
        if src.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
            src = src.astype(np.float32)
        warped = cv2.warpAffine(src, matrix, (out_w, out_h), flags=interp, borderMode=cv2.BORDER_REPLICATE)
        if src.ndim == 3 and warped.ndim == 2:  # OpenCV drops a single channel axis
            warped = warped[..., None]
        outs.append(warped.astype(frames.dtype, copy=False))
    return np.stack(outs)


def _to_rgb_u8(frame: np.ndarray, color: str) -> np.ndarray:
    f = np.asarray(frame)
    if f.ndim == 2 or f.shape[-1] == 1:
        f = cv2.cvtColor(to_gray_u8(f), cv2.COLOR_GRAY2RGB)
    else:
        if f.dtype != np.uint8:
            f = f.astype(np.float32)
            f = np.clip(f * (255.0 if f.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        f = np.ascontiguousarray(f[..., :3])
        if color == "bgr":
            f = cv2.cvtColor(f, cv2.COLOR_BGR2RGB)
    return f


__all__ = ["DETECTORS", "FaceCropper", "NoFaceError", "aligned_matrix", "apply_crop"]
