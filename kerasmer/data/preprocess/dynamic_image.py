"""Dynamic images by approximate rank pooling (Bilen et al., CVPR 2016).

A dynamic image summarizes a clip's appearance *and* its temporal evolution in
one image: the parameters of a linear ranking function that orders the frames
in time, approximated by a fixed weighted sum of the frames.  LEARNet (Verma et
al., IEEE TIP 2020) classifies micro-expressions from the dynamic image of the
clip.

Reference: H. Bilen, B. Fernando, E. Gavves, A. Vedaldi, S. Gould, "Dynamic Image
Networks for Action Recognition", CVPR 2016, eq. (4)-(5) and the closed form of
the coefficients when the frames are fed directly (no running average):

    α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1}),   t = 1..T,

with H_t = Σ_{i=1..t} 1/i the t-th harmonic number (H_0 = 0).  The coefficients
sum to zero, so a still clip gives a flat image; they are strongly negative for
the first frames and positive after, so the image shows "later minus earliest".
"""

from __future__ import annotations

import numpy as np


def rank_pooling_coefficients(num_frames: int) -> np.ndarray:
    """The approximate rank pooling coefficients α_1..α_T.

    Args:
        num_frames: T ≥ 1.

    Returns:
        float64 array of shape (T,).

    Example:
        >>> rank_pooling_coefficients(3).round(3)
        array([-1.333,  0.667,  0.667])
    """
    t_count = int(num_frames)
    if t_count < 1:
        raise ValueError(f"rank_pooling_coefficients: num_frames must be >= 1, got {num_frames}")
    # harmonic[k] = H_k for k = 0..T
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, t_count + 1))])
    t = np.arange(1, t_count + 1)
    return 2.0 * (t_count - t + 1) - (t_count + 1) * (harmonic[t_count] - harmonic[t - 1])


def dynamic_image(frames, *, rescale: bool = True) -> np.ndarray:
    """Approximate rank pooling of a clip into one image.

    Args:
        frames: array-like (T, H, W, C) (or (T, H, W)), any numeric dtype; the
            frames in temporal order.
        rescale: min-max rescale the result to [0, 255] (for display and as a
            network input, as in Bilen et al.); a still clip (all frames equal)
            gives all zeros.  With ``False`` the raw weighted sum is returned.

    Returns:
        float32 array (H, W, C) (or (H, W)).

    Raises:
        ValueError: fewer than 3 dimensions or no frame.

    Example:
        >>> clip = np.random.default_rng(0).integers(0, 255, (10, 8, 8, 3)).astype(np.uint8)
        >>> di = dynamic_image(clip)
        >>> di.shape, di.dtype, float(di.min()), float(di.max())
        ((8, 8, 3), dtype('float32'), 0.0, 255.0)
    """
    x = np.asarray(frames)
    if x.ndim < 3 or x.shape[0] < 1:
        raise ValueError(f"dynamic_image: expected frames of shape (T, H, W[, C]) with T >= 1, got {x.shape}")
    alpha = rank_pooling_coefficients(x.shape[0])
    # tensordot over time in float64: exact enough for long 8-bit clips.
    out = np.tensordot(alpha, x.astype(np.float64), axes=(0, 0))
    if rescale:
        lo, hi = out.min(), out.max()
        out = (out - lo) * (255.0 / (hi - lo)) if hi - lo > 1e-8 else np.zeros_like(out)
    return out.astype(np.float32)


__all__ = ["dynamic_image", "rank_pooling_coefficients"]
