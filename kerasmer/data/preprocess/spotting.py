"""Micro-expression spotting in long videos: a motion curve, then peaks with the MEGC threshold rule.

The method follows the MEGC spotting baselines:

* **feature difference with a k-frame lag** (Moilanen, Zhao & Pietikäinen, "Spotting rapid facial
  movements from videos using appearance-based feature difference analysis", ICPR 2014; used as
  the LBP-χ² baseline of MEGC 2019 by Li, Soladié, Séguier, Wang & Yap, "Spotting micro-expressions
  on long videos sequences", FG 2019): each frame is compared with the frames ``k`` before and
  after it, ``k`` about half a typical micro-expression, so slow changes cancel and brief ones stand
  out; the per-frame score is the mean of the largest block differences, and peaks are kept above
  ``T = mean + p · (max − mean)`` of the whole curve;
* **optical flow instead of appearance** (He, Wang, Li & Yap, "Spotting macro- and micro-expression
  intervals in long video sequences", the MDMD baseline of MEGC 2020, FG 2020): the feature is the
  dense flow between a frame and the frame ``k`` before it, and single-frame peaks are turned into
  onset–apex–offset intervals no longer than a micro-expression.

Here, for frame ``t`` with ``F_t`` the flow from frame ``t − k`` to frame ``t``:

1. frames are turned grey and shrunk to a small working size (64 px), which keeps flow cheap and
   averages camera noise away;
2. global head motion is removed from each ``F_t``: an affine motion (translation, rotation,
   scale) is fitted by trimmed least squares to the face outside the eyes and subtracted;
3. the eye regions are masked, so blinks do not count: found with OpenCV's Haar eye cascade on the
   middle frame (else fixed boxes for a face crop), each stopping short of the brow (AU1, AU2, AU4);
4. ``D_t = F_t − F_{t+k}``, the displacement of frame ``t`` against both neighbours (the flow-domain
   form of Moilanen's contrast with the head and tail frames), is large at the apex of a brief
   movement and small during slow ones; the curve value is the mean of the ``top_blocks`` largest
   block means of ``|D_t|`` on an 8 × 8 grid minus the median block (noise raises all blocks alike);
5. the curve is smoothed (Gaussian, σ = k/3), peaks above ``T`` become intervals (from the valley
   before the apex to the valley after it; weaker peaks within ``k`` frames of a stronger one's interval
   are its side lobes and dropped), and intervals longer than ``max_duration_s`` (0.5 s: a micro-expression
   is shorter) or shorter than ``min_duration_s`` are dropped.  A movement is also dropped when the
   face still differs between ``apex ± 0.7 · max_duration_s`` (more than at quiet times): a
   micro-expression has come and gone by then, while a macro-expression or a sustained change has not.

The flow comes from :mod:`kerasmer.data.preprocess.flow` (OpenCV); no model is involved.

Example:
    >>> curve = motion_curve(face_crops, fps=200)                        # doctest: +SKIP
    >>> spot_intervals(face_crops, fps=200, curve=curve)                 # doctest: +SKIP
    [SpottedInterval(onset=488, apex=511, offset=525, score=1.10...), ...]
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from kerasmer.data.preprocess._frames import to_gray_u8
from kerasmer.data.preprocess.flow import optical_flow

TYPICAL_MICRO_S = 0.3   # a typical micro-expression, onset to offset (CASME II / SAMM averages lie near it)
# Eye regions (x0, y0, x1, y1) as fractions of a face crop that the face fills (kerasmer's crops and the
# synthetic faces): generous, because a blink moves the lids and the lashes' shadow around them.
EYE_BOXES = ((0.17, 0.36, 0.47, 0.54), (0.53, 0.36, 0.83, 0.54))
# Small flow windows at the 64-pixel working size: a 15-pixel window would smear a blink over the brows.
_FLOW_DEFAULTS = {"farneback": {"winsize": 7, "levels": 2}}
_BORDER = 0.06  # flow at the crop's border is unreliable (pixels leave the frame): left out


class SpottedInterval(NamedTuple):
    """One spotted movement: frame indices into the frames given, and the curve's peak value."""

    onset: int
    apex: int
    offset: int
    score: float


def default_k(fps: float, typical_s: float = TYPICAL_MICRO_S) -> int:
    """The frame lag: half a typical micro-expression at ``fps`` (at least 1).

    Example:
        >>> default_k(200), default_k(30)
        (30, 4)
    """
    if not fps or fps <= 0:
        raise ValueError(f"spotting: fps must be > 0, got {fps!r}")
    return max(1, int(round(0.5 * typical_s * fps)))


def _working_frames(frames, size: int) -> np.ndarray:
    """``(T, h, w)`` uint8 grey frames, the shorter side shrunk to ``size``."""
    if not hasattr(frames, "__len__") or len(frames) == 0:
        raise ValueError("spotting: no frames given")
    first = np.asarray(frames[0])
    if first.ndim not in (2, 3) or first.dtype != np.uint8:
        raise ValueError(f"spotting: frames must be (T, H, W) or (T, H, W, 3) uint8; got frame 0 with shape "
                         f"{first.shape} and dtype {first.dtype}")
    h, w = first.shape[:2]
    scale = min(1.0, size / min(h, w))
    out_w, out_h = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
    out = np.empty((len(frames), out_h, out_w), np.uint8)
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.shape[:2] != (h, w):
            raise ValueError(f"spotting: frame {i} has shape {frame.shape}, frame 0 {first.shape}")
        out[i] = cv2.resize(to_gray_u8(frame), (out_w, out_h), interpolation=cv2.INTER_AREA)
    return out


_EYE_CASCADE: list = []
_EYE_HALF = (0.135, 0.05, 0.12)  # mask half-width, extent above and below a found eye centre (crop fractions)


def find_eye_boxes(frame: np.ndarray):
    """Eye regions of a face crop, found with OpenCV's Haar eye cascade; ``None`` if no eye is found.

    Only detections in the upper 65 % of the crop count.  With two eyes found on either side of
    the middle the best-matched pair is used; with one, its mirror image stands in for the other.
    Each box spans the eye and its lids but stops short of the brow (whose movement is AU1, AU2, AU4).

    Args:
        frame: ``(H, W)`` or ``(H, W, 3)`` uint8 face crop.

    Returns:
        Two ``(x0, y0, x1, y1)`` boxes as fractions of the crop, or ``None``.

    Example:
        >>> boxes = find_eye_boxes(frames[0]) or EYE_BOXES  # doctest: +SKIP
    """
    if not _EYE_CASCADE:
        _EYE_CASCADE.append(cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye.xml"))
    gray = to_gray_u8(frame)
    h, w = gray.shape
    if min(h, w) < 128:  # the cascade needs eyes of 20+ pixels
        f = 128 / min(h, w)
        gray = cv2.resize(gray, (int(round(w * f)), int(round(h * f))), interpolation=cv2.INTER_LINEAR)
    gh, gw = gray.shape
    found = _EYE_CASCADE[0].detectMultiScale(gray, 1.05, 3, minSize=(max(8, gw // 16), max(8, gh // 16)))
    centres = [((x + bw / 2) / gw, (y + bh / 2) / gh, bw / gw) for x, y, bw, bh in found if (y + bh / 2) < 0.65 * gh]
    left = [c for c in centres if c[0] < 0.5]
    right = [c for c in centres if c[0] >= 0.5]
    pairs = [(abs(a[1] - b[1]) + abs(a[2] - b[2]) + abs(a[0] + b[0] - 1), a, b) for a in left for b in right
             if abs(a[1] - b[1]) < 0.08]
    if pairs:
        _, a, b = min(pairs)
    elif centres:
        a = max(centres, key=lambda c: c[2])
        b = (1 - a[0], a[1], a[2])
    else:
        return None
    hw, up, down = _EYE_HALF
    return tuple((cx - hw, cy - up, cx + hw, cy + down) for cx, cy, _ in (a, b))


def region_mask(shape, *, mask_eyes: bool = True, eye_boxes=EYE_BOXES) -> np.ndarray:
    """Boolean ``(h, w)`` mask of the pixels that count: the crop minus its border and, if asked, the eyes.

    Example:
        >>> m = region_mask((64, 64)); bool(m[32, 32]), bool(m[28, 20]), bool(m[0, 0])
        (True, False, False)
    """
    h, w = shape
    mask = np.zeros((h, w), bool)
    bh, bw = int(np.ceil(_BORDER * h)), int(np.ceil(_BORDER * w))
    mask[bh:h - bh, bw:w - bw] = True
    if mask_eyes:
        for x0, y0, x1, y1 in eye_boxes:
            mask[int(y0 * h):int(np.ceil(y1 * h)), int(x0 * w):int(np.ceil(x1 * w))] = False
    return mask


def remove_global_motion(flow: np.ndarray, mask: np.ndarray, *, trim: float = 0.8) -> np.ndarray:
    """Subtract the affine motion (head translation, rotation, scale) fitted to ``flow`` on ``mask``.

    The fit is least squares, refitted on the ``trim`` share of pixels it explains best, so a local
    facial movement (a small part of the face) does not pull the head's motion towards it.

    Args:
        flow: ``(h, w, 2)`` flow.
        mask: ``(h, w)`` pixels to fit on.
        trim: share of the pixels kept for the second fit.

    Returns:
        The residual flow, ``(h, w, 2)`` float32.

    Example:
        >>> yy, xx = np.mgrid[0:16, 0:16].astype(np.float32)
        >>> rigid = np.stack([0.5 + 0.01 * yy, -0.3 - 0.01 * xx], -1)   # a shift and a small rotation
        >>> float(np.abs(remove_global_motion(rigid, np.ones((16, 16), bool))).max()) < 1e-4
        True
    """
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    design = np.stack([xx / w, yy / h, np.ones_like(xx)], -1)
    x, uv = design[mask], flow[mask]
    coef = np.linalg.lstsq(x, uv, rcond=None)[0]
    err = np.linalg.norm(uv - x @ coef, axis=1)
    keep = err <= np.quantile(err, trim)
    if keep.sum() >= 3:
        coef = np.linalg.lstsq(x[keep], uv[keep], rcond=None)[0]
    return (flow - design @ coef).astype(np.float32)


def _block_score(field: np.ndarray, mask: np.ndarray, grid: int, top: int) -> float:
    """Mean of the ``top`` largest block means of ``|field|`` on a ``grid`` × ``grid`` raster (masked), minus the median."""
    mag = np.linalg.norm(field, axis=-1) * mask
    h, w = mask.shape
    ys, xs = np.linspace(0, h, grid + 1).astype(int), np.linspace(0, w, grid + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(mag, ys[:-1], axis=0), xs[:-1], axis=1)
    counts = np.add.reduceat(np.add.reduceat(mask.astype(np.float32), ys[:-1], axis=0), xs[:-1], axis=1)
    full = counts >= 0.9 * counts.max()          # blocks partly masked (eyes, border) do not compete: the
    # flow of a blink spills a few pixels past any mask, and a small remnant would weigh a lot in them
    means = np.sort((sums[full] / counts[full]).ravel())[::-1]
    # minus the median block: camera noise raises every block alike, a facial movement only a few
    return float(means[:top].mean() - np.median(means)) if means.size else 0.0


def _smooth(curve: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(curve) < 3:
        return curve
    r = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    padded = np.pad(curve, r, mode="edge")
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")


def _contrast_scores(gray: np.ndarray, k: int, mask: np.ndarray, *, remove_global: bool, method: str,
                     grid: int, top: int, flow_opts: dict) -> np.ndarray:
    """Per-frame block score of ``D_t = F_t − F_{t+k}`` (``F_t``: flow from frame ``t − k`` to ``t``).

    Only the last ``k + 1`` flows are kept, so memory does not grow with the video.  Where ``t + k``
    lies past the end, ``D_t = F_t``; frames before ``k`` compare with frame 0.
    """
    n = len(gray)
    ring: list = []
    scores = np.zeros(n, np.float32)
    for t in range(n):
        f = np.zeros(gray.shape[1:] + (2,), np.float32)
        if t > 0:
            f = optical_flow(gray[max(t - k, 0)], gray[t], method=method, **flow_opts)
            f = remove_global_motion(f, mask) if remove_global else f
        ring.append(f)
        if len(ring) > k:             # ring[0] is F_{t-k}: its partner F_t has arrived
            scores[t - k] = _block_score(ring.pop(0) - f, mask, grid, top)
    for j, f in enumerate(ring):      # the last k frames have no partner
        scores[n - len(ring) + j] = _block_score(f, mask, grid, top)
    return scores


def motion_curve(frames, fps: float, *, k: int | None = None, mask_eyes: bool = True, remove_global: bool = True,
                 size: int = 64, method: str = "farneback", eye_boxes="auto", grid: int = 8, top_blocks: int = 4,
                 smooth: bool = True, **flow_opts) -> np.ndarray:
    """The per-frame motion curve of a face video: high at the apex of a brief facial movement.

    Args:
        frames: ``(T, H, W)`` or ``(T, H, W, 3)`` uint8 face crops, one crop for the whole window (a crop
            that moves with the detector would add its own motion).
        fps: the frames' rate; sets ``k`` and the smoothing.
        k: frame lag; default :func:`default_k` (half of a 0.3 s micro-expression).
        mask_eyes: leave the eye regions (``eye_boxes``) out, so blinks do not count.
        remove_global: subtract the head's affine motion from each flow (:func:`remove_global_motion`).
        size: working size in pixels (shorter side) for the flow.
        method: flow method of :func:`kerasmer.data.preprocess.flow.optical_flow`.
        eye_boxes: eye regions as fractions ``(x0, y0, x1, y1)`` of the crop (from landmarks, if you have
            them); ``"auto"`` finds them on the middle frame (:func:`find_eye_boxes`), else ``EYE_BOXES``.
        grid: blocks per side for the score.
        top_blocks: the score averages this many largest block differences (a micro-expression moves a
            small part of the face).
        smooth: Gaussian smoothing with σ = k/3 frames.
        **flow_opts: options of the flow method (e.g. ``winsize`` for farneback).

    Returns:
        ``(T,)`` float32, in pixels of the working size.

    Raises:
        ValueError: no frames, frames not uint8 or of different sizes, fps ≤ 0, k < 1.

    Example:
        >>> curve = motion_curve(frames, fps=200)  # doctest: +SKIP
        >>> curve.shape == (len(frames),)  # doctest: +SKIP
        True
    """
    gray, mask, k, flow_opts = _prepare(frames, fps, k, mask_eyes=mask_eyes, size=size, method=method,
                                        eye_boxes=eye_boxes, flow_opts=flow_opts)
    scores = _contrast_scores(gray, k, mask, remove_global=remove_global, method=method, grid=grid,
                              top=top_blocks, flow_opts=flow_opts)
    return (_smooth(scores, k / 3.0) if smooth else scores).astype(np.float32)


def _prepare(frames, fps, k, *, mask_eyes, size, method, eye_boxes, flow_opts):
    """Checked arguments: working grey frames, the pixel mask, the lag and the flow options."""
    if not fps or fps <= 0:
        raise ValueError(f"spotting: fps must be > 0, got {fps!r}")
    k = default_k(fps) if k is None else int(k)
    if k < 1:
        raise ValueError(f"spotting: k must be >= 1, got {k}")
    gray = _working_frames(frames, size)
    if isinstance(eye_boxes, str):
        if eye_boxes != "auto":
            raise ValueError(f"spotting: eye_boxes must be 'auto' or a list of boxes, got {eye_boxes!r}")
        eye_boxes = find_eye_boxes(np.asarray(frames[len(frames) // 2])) if mask_eyes else None
        eye_boxes = eye_boxes or EYE_BOXES
    mask = region_mask(gray.shape[1:], mask_eyes=mask_eyes, eye_boxes=eye_boxes)
    return gray, mask, k, {**_FLOW_DEFAULTS.get(method, {}), **flow_opts}


def megc_threshold(curve: np.ndarray, p: float) -> float:
    """The MEGC spotting threshold ``mean + p · (max − mean)`` of a curve (Moilanen et al. 2014).

    Example:
        >>> megc_threshold(np.array([0.0, 0.0, 0.0, 4.0]), 0.5)
        2.5
    """
    curve = np.asarray(curve, np.float64)
    return float(curve.mean() + p * (curve.max() - curve.mean()))


def _peaks(curve: np.ndarray, threshold: float) -> list[int]:
    """The highest frame of each run of the curve above ``threshold``."""
    above = np.r_[False, curve > threshold, False]
    starts, ends = np.flatnonzero(~above[:-1] & above[1:]), np.flatnonzero(above[:-1] & ~above[1:])
    return [int(a + np.argmax(curve[a:b])) for a, b in zip(starts, ends)]


def _extent(curve: np.ndarray, apex: int, base: float, limit: int) -> tuple[int, int]:
    """Onset and offset around a peak: the valleys on either side of it, at most ``limit`` frames away.

    The curve compares each frame with the frames k before and after, so a brief movement gives a
    main lobe over the movement and a weaker side lobe past each end; the valleys between them mark
    onset and offset.  On a quiet background the walk stops where the curve is down to a fifth of
    the peak's height above ``base``.
    """
    floor = base + 0.2 * (curve[apex] - base)
    onset = apex
    while onset > 0 and apex - onset < limit and floor < curve[onset - 1] < curve[onset]:
        onset -= 1
    offset = apex
    while offset < len(curve) - 1 and offset - apex < limit and floor < curve[offset + 1] < curve[offset]:
        offset += 1
    return onset, offset


def _lasting_change(gray, mask, apex: int, span: int, *, method, flow_opts, grid, top) -> float:
    """Block score of the head-motion-free flow between frames ``apex − span`` and ``apex + span``."""
    a, b = max(apex - span, 0), min(apex + span, len(gray) - 1)
    flow = remove_global_motion(optical_flow(gray[a], gray[b], method=method, **flow_opts), mask)
    return _block_score(flow, mask, grid, top)


def _intervals(curve: np.ndarray, fps: float, k: int, *, p: float, durations, lasting) -> list[SpottedInterval]:
    """Peaks above the MEGC threshold -> intervals, strongest first, side lobes and long movements dropped.

    ``lasting`` is ``None`` or ``(ratio, fn(apex, span) -> score of the change across apex ± span, its
    level at quiet times)``.
    """
    min_s, max_s = durations
    threshold, base = megc_threshold(curve, p), float(np.median(curve))
    span, limit = int(round(0.7 * max_s * fps)), int(round(max_s * fps))
    found, claimed = [], []
    for apex in sorted(_peaks(curve, threshold), key=lambda i: -curve[i]):
        if any(a - k <= apex <= b + k for a, b in claimed):
            continue  # a side lobe of a stronger peak, or a second crest of the same movement
        onset, offset = _extent(curve, apex, base, limit)
        claimed.append((onset, offset))
        if not min_s <= (offset - onset + 1) / fps <= max_s:
            continue
        if lasting is not None and lasting[1](apex, span) - lasting[2] > lasting[0] * (curve[apex] - base):
            continue  # the face has not come back: a longer movement
        found.append(SpottedInterval(onset, apex, offset, float(curve[apex])))
    return found


def _lasting_check(gray, mask, ratio: float, span: int, **score) -> tuple:
    """``(ratio, fn(apex, span), quiet level)`` for :func:`_intervals`.

    The score of a still face is not 0 (camera noise, what the head fit leaves), so its level is measured
    across the video: the 30th percentile over 32 evenly spaced frame pairs, as most of a video is quiet.
    """
    def change(apex, s):
        return _lasting_change(gray, mask, apex, s, **score)

    quiet = np.percentile([change(int(t), span) for t in np.linspace(0, len(gray) - 1, 32)], 30)
    return ratio, change, float(quiet)


def spot_intervals(frames, fps: float, *, p: float = 0.3, max_duration_s: float = 0.5,
                   min_duration_s: float = 0.04, curve: np.ndarray | None = None, k: int | None = None,
                   lasting_ratio: float = 0.5, **opts) -> list[SpottedInterval]:
    """Spot micro-expressions in a face video: peaks of :func:`motion_curve` above the MEGC threshold.

    Args:
        frames: ``(T, H, W)`` or ``(T, H, W, 3)`` uint8 face crops (one crop for the whole window).
        fps: frame rate; durations are in seconds, so any rate works.
        p: the MEGC threshold ``mean + p · (max − mean)`` of the curve (0 ≤ p < 1).
        max_duration_s: longer intervals are dropped (a micro-expression lasts at most 0.5 s).
        min_duration_s: shorter intervals are dropped.
        curve: a curve already computed with :func:`motion_curve` (same frames, fps and ``k``).
        k: frame lag; default :func:`default_k`.
        lasting_ratio: a peak is dropped when the face between ``apex ± 0.7 · max_duration_s`` still
            differs, beyond the level of quiet times, by more than this share of the peak: a longer
            movement (a macro-expression), not a micro-expression, which has come and gone by then.
            ``None`` skips the check.
        **opts: options of :func:`motion_curve` (``mask_eyes``, ``remove_global``, ``size``, ``method``,
            ``eye_boxes``, ``grid``, ``top_blocks``, flow options).

    Returns:
        :class:`SpottedInterval` list in time order: onset, apex and offset are indices into ``frames``,
        ``score`` the curve's value at the apex.

    Raises:
        ValueError: bad frames, fps, ``p`` or durations, or a ``curve`` of another length.

    Example:
        >>> for iv in spot_intervals(frames, fps=200):  # doctest: +SKIP
        ...     print(iv.onset, iv.apex, iv.offset, round(iv.score, 2))
    """
    if not 0 <= p < 1:
        raise ValueError(f"spot_intervals: p must lie in [0, 1), got {p!r}")
    if not 0 <= min_duration_s < max_duration_s:
        raise ValueError(f"spot_intervals: need 0 <= min_duration_s < max_duration_s, got {min_duration_s}, "
                         f"{max_duration_s}")
    setup = {"mask_eyes": True, "size": 64, "method": "farneback", "eye_boxes": "auto"}
    setup.update({key: opts.pop(key) for key in setup if key in opts})
    score = {"remove_global": True, "grid": 8, "top_blocks": 4, "smooth": True}
    score.update({key: opts.pop(key) for key in score if key in opts})
    gray, mask, k, flow_opts = _prepare(frames, fps, k, flow_opts=opts, **setup)
    grid, top = score["grid"], score["top_blocks"]
    if curve is None:  # motion_curve's steps, on the frames already prepared
        curve = _contrast_scores(gray, k, mask, remove_global=score["remove_global"], method=setup["method"],
                                 grid=grid, top=top, flow_opts=flow_opts)
        curve = (_smooth(curve, k / 3.0) if score["smooth"] else curve).astype(np.float32)  # as motion_curve's
    curve = np.asarray(curve, np.float64)
    if curve.shape != (len(gray),):
        raise ValueError(f"spot_intervals: curve has shape {curve.shape}; expected ({len(gray)},), one value per frame")
    lasting = None if lasting_ratio is None else _lasting_check(
        gray, mask, lasting_ratio, int(round(0.7 * max_duration_s * fps)), method=setup["method"],
        flow_opts=flow_opts, grid=grid, top=top)
    found = _intervals(curve, fps, k, p=p, durations=(min_duration_s, max_duration_s), lasting=lasting)
    return sorted(found)


__all__ = ["EYE_BOXES", "SpottedInterval", "default_k", "find_eye_boxes", "megc_threshold", "motion_curve",
           "region_mask", "remove_global_motion", "spot_intervals"]
