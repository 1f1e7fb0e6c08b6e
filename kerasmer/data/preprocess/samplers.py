"""Temporal samplers: which frames of a clip a model sees.

Every sampler works on a clip given as its frames from onset to offset
(``length`` frames) and the apex position in it (0 = onset, see
:func:`kerasmer.data.preprocess.apex.resolve_apex`), and returns frame *indices*, so the
pipeline decodes only the frames it needs.  :func:`interpolate` returns frames.

============================ ======================================================
sampler                      frames
============================ ======================================================
:func:`sample_apex`          the apex frame
:func:`sample_onset_apex`    onset and apex (the optical-flow input)
:func:`sample_uniform`       N frames, onset -> apex -> offset, split in proportion to rise and fall
:func:`sample_apex_middle`   N frames: N//2 onset -> apex, the apex at N//2, the rest apex -> offset
                             (13 = onset, 5, apex, 5, offset: the shallow models)
:func:`sample_centered`      N frames centred on the apex, edges replicated (16, MERANet)
:func:`interpolate`          linear temporal interpolation to N frames
dynamic image                :func:`kerasmer.data.preprocess.dynamic_image.dynamic_image`
============================ ======================================================

Edge cases are part of the contract: a clip shorter than N repeats frames
(nearest frame, never invented content, except in :func:`interpolate`), and an
apex on the first or last frame is allowed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kerasmer.data.preprocess._frames import as_clip


def _check(length, apex, clip_id) -> tuple[int, int]:
    where = f"clip {clip_id}: " if clip_id else ""
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool):
        raise TypeError(f"{where}length must be an int (frames from onset to offset), got {length!r}")
    if length < 1:
        raise ValueError(f"{where}zero-length clip: length must be at least 1 frame, got {length}")
    if not isinstance(apex, (int, np.integer)) or isinstance(apex, bool):
        raise TypeError(f"{where}apex must be an int position (0 = onset), got {apex!r}")
    if not 0 <= apex < length:
        raise ValueError(f"{where}apex position {apex} lies outside the clip's frames 0..{length - 1} (onset..offset)")
    return int(length), int(apex)


def _check_n(n, name) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{name}: n must be a positive int, got {n!r}")
    return int(n)


def sample_apex(length: int, apex: int, *, clip_id: str | None = None) -> np.ndarray:
    """The apex frame alone.

    Args:
        length: frames from onset to offset.
        apex: apex position (0 = onset).
        clip_id: named in errors.

    Returns:
        ``int64`` array ``[apex]``.

    Example:
        >>> sample_apex(30, 12).tolist()
        [12]
    """
    _, apex = _check(length, apex, clip_id)
    return np.array([apex], np.int64)


def sample_onset_apex(length: int, apex: int, *, clip_id: str | None = None) -> np.ndarray:
    """The onset and the apex frame (the pair optical flow is computed between).

    An apex on the onset frame gives ``[0, 0]``: the pair exists, its flow is zero.

    Example:
        >>> sample_onset_apex(30, 12).tolist()
        [0, 12]
    """
    _, apex = _check(length, apex, clip_id)
    return np.array([0, apex], np.int64)


def sample_uniform(length: int, apex: int, n: int = 13, *, clip_id: str | None = None) -> np.ndarray:
    """``n`` frames spaced uniformly from onset to apex and from apex to offset.

    The onset, the apex and the offset are always among them (for ``n >= 3``);
    the other frames are shared between the rising and the falling part in
    proportion to their durations, so an apex on the first or last frame puts
    every frame on the one part there is.  A clip shorter than ``n`` repeats
    frames (each kept frame appears once or more, in order).

    Args:
        length: frames from onset to offset.
        apex: apex position (0 = onset).
        n: number of frames (13 for the shallow 3D models).
        clip_id: named in errors.

    Returns:
        ``int64`` array of ``n`` non-decreasing indices in ``0 .. length - 1``.

    Example:
        >>> sample_uniform(9, 2, n=5).tolist()
        [0, 2, 4, 6, 8]
    """
    length, apex = _check(length, apex, clip_id)
    n = _check_n(n, "sample_uniform")
    if n == 1:
        return np.array([apex], np.int64)
    if n == 2:
        return np.array([0, apex], np.int64)
    rise, fall = apex, length - 1 - apex
    if rise + fall == 0:
        return np.zeros(n, np.int64)
    # points strictly before the apex (n_rise) and strictly after it (n - 1 - n_rise)
    n_rise = int(round((n - 1) * rise / (rise + fall)))
    if rise > 0:
        n_rise = max(n_rise, 1)  # keep the onset
    if fall > 0:
        n_rise = min(n_rise, n - 2)  # keep the offset
    before = np.linspace(0, apex, n_rise + 1)[:-1]
    after = np.linspace(apex, length - 1, n - n_rise)[1:]
    idx = np.concatenate([before, [apex], after])
    return np.clip(np.round(idx), 0, length - 1).astype(np.int64)


def sample_apex_middle(length: int, apex: int, n: int = 13, *, clip_id: str | None = None) -> np.ndarray:
    """``n`` frames with the apex always at index ``n // 2``: onset -> apex, the apex, apex -> offset.

    Upadhy & Verlekar (shallow models, §2): "a uniform sampling of five frames
    between the onset and apex and five from apex to offset ... results in 13
    frames", read as onset, five frames, apex, five frames, offset.  The first
    ``n // 2`` frames are spaced uniformly from the onset up to (not including)
    the apex and the last ``n - n // 2 - 1`` from just after the apex to the
    offset, so a model that reads token ``T // 2`` as the apex (the shallow
    Conv2D + attention model) sees the apex on every clip, whatever the rise
    and fall durations.  An apex on the
    first (last) frame repeats it on the rising (falling) side; a short part
    repeats frames, never inventing any.

    Args:
        length: frames from onset to offset.
        apex: apex position (0 = onset).
        n: number of frames (13 for the shallow models).
        clip_id: named in errors.

    Returns:
        ``int64`` array of ``n`` non-decreasing indices; element ``n // 2`` is ``apex``.

    Example:
        >>> sample_apex_middle(30, 3, n=7).tolist()
        [0, 1, 2, 3, 12, 20, 29]
    """
    length, apex = _check(length, apex, clip_id)
    n = _check_n(n, "sample_apex_middle")
    n_before, n_after = n // 2, n - n // 2 - 1
    before = np.linspace(0, apex, n_before + 1)[:-1]  # onset .. just before the apex
    # just after the apex .. offset (the apex itself when it is the last frame)
    after = np.linspace(apex, length - 1, n_after + 1)[1:] if n_after else np.zeros(0)
    idx = np.concatenate([before, [apex], after])
    out = np.clip(np.round(idx), 0, length - 1).astype(np.int64)
    out[n_before] = apex  # rounding never moves it, but the contract is exact
    return out


def sample_centered(length: int, apex: int, n: int = 16, *, clip_id: str | None = None) -> np.ndarray:
    """``n`` consecutive frames with the apex at position ``n // 2``; past the clip's ends, edge frames repeat.

    Args:
        length: frames from onset to offset.
        apex: apex position (0 = onset).
        n: window length (16 for MERANet).
        clip_id: named in errors.

    Returns:
        ``int64`` array of ``n`` indices; element ``n // 2`` is the apex.

    Example:
        >>> sample_centered(5, 0, n=6).tolist()
        [0, 0, 0, 0, 1, 2]
    """
    length, apex = _check(length, apex, clip_id)
    n = _check_n(n, "sample_centered")
    first = apex - n // 2
    return np.clip(np.arange(first, first + n), 0, length - 1).astype(np.int64)


def interpolate(frames, n: int, *, clip_id: str | None = None) -> np.ndarray:
    """Linear temporal interpolation of a clip to exactly ``n`` frames.

    Output frame ``i`` sits at time ``i * (T - 1) / (n - 1)`` of the input and
    blends its two neighbouring frames; first and last frames are kept exactly.
    A one-frame clip is repeated.

    Args:
        frames: ``(T, H, W[, C])`` clip (or list of frames).
        n: output length.
        clip_id: named in errors.

    Returns:
        ``(n, H, W[, C])`` float32 array, in the input's value range.

    Example:
        >>> clip = np.stack([np.zeros((2, 2)), np.full((2, 2), 4.0)])
        >>> interpolate(clip, 3)[:, 0, 0].tolist()
        [0.0, 2.0, 4.0]
    """
    clip = as_clip(frames, clip_id=clip_id)
    n = _check_n(n, "interpolate")
    t = len(clip)
    if t == 1 or n == 1:
        pick = clip[[0] * n] if t == 1 else clip[[(t - 1) // 2]]
        return pick.astype(np.float32)
    pos = np.linspace(0.0, t - 1, n)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).astype(np.float32).reshape((n,) + (1,) * (clip.ndim - 1))
    return (clip[lo].astype(np.float32) * (1 - w) + clip[hi].astype(np.float32) * w).astype(np.float32)


def take(frames, indices) -> np.ndarray:
    """``frames[indices]`` with a clear error for an index past the clip.

    Example:
        >>> take(np.arange(5), sample_centered(5, 4, n=4)).tolist()
        [2, 3, 4, 4]
    """
    clip = np.asarray(frames)
    idx = np.asarray(indices, np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= len(clip)):
        raise IndexError(f"take: indices {idx.min()}..{idx.max()} are outside a clip of {len(clip)} frames")
    return clip[idx]


SAMPLERS: dict[str, Callable[..., np.ndarray]] = {
    "apex": sample_apex,
    "onset_apex": sample_onset_apex,
    "uniform": sample_uniform,
    "apex_middle": sample_apex_middle,
    "centered": sample_centered,
}
"""Index samplers by name: ``fn(length, apex, [n], clip_id=...) -> indices``."""


def sample_indices(
    sampler: str, length: int, apex: int, n: int | None = None, *, clip_id: str | None = None
) -> np.ndarray:
    """Dispatch to a sampler of :data:`SAMPLERS` by name (``n`` only for uniform, apex_middle and centered).

    Example:
        >>> sample_indices("centered", 40, 20, n=4).tolist()
        [18, 19, 20, 21]
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sample_indices: sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
    if sampler in ("uniform", "apex_middle", "centered"):
        return SAMPLERS[sampler](length, apex, **({} if n is None else {"n": n}), clip_id=clip_id)
    if n is not None and n != len(SAMPLERS[sampler](1, 0)):
        raise ValueError(f"sample_indices: the {sampler!r} sampler has a fixed length; got n={n}")
    return SAMPLERS[sampler](length, apex, clip_id=clip_id)


__all__ = [
    "SAMPLERS", "interpolate", "sample_apex", "sample_apex_middle", "sample_centered",
    "sample_indices", "sample_onset_apex", "sample_uniform", "take",
]
