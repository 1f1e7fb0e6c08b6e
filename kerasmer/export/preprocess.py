"""The Python input pipeline rebuilt from standard TensorFlow ops, for serving graphs that take raw frames.

:func:`frames_to_input` is the graph twin of
:func:`kerasmer.data.pipeline.inputs.input_from_frames`: from a clip's face-cropped RGB uint8 frames
(onset..offset) and its apex position it picks the frames the model's modality and sampler read
(:func:`~kerasmer.data.pipeline.inputs.frame_positions`), converts them to grey for one-channel models,
resizes them and assembles the model input (one frame, a sampled clip, or the dynamic image by approximate
rank pooling, Bilen et al., CVPR 2016).  Every step uses ops TF Serving runs as they are (no ``py_function``),
so a server needs neither kerasmer nor OpenCV.

How close it is to the OpenCV pipeline (``tests/export/test_preprocess.py`` measures it):

* grey: OpenCV's fixed-point ``COLOR_RGB2GRAY`` (weights 9798, 19235, 3735 / 2**15, rounded), bit-exact;
* resize: OpenCV's ``INTER_AREA`` is an area average when shrinking both axes, rebuilt here as two weight
  matrices (OpenCV's cell overlaps) in float64, rounded as OpenCV rounds (halves up in its 2 x 2 fast path,
  to even elsewhere).  ``tf.image.resize(method="area")`` was 1 level off in up to 2.4 % of the pixels at
  non-integer ratios; this is exact at integer ratios and 1 level off in under 1 % of them otherwise (where
  OpenCV's float32 sums land on the other side of a half).  When an axis is enlarged OpenCV interpolates
  linearly with its own taps and 11-bit fixed-point weights, rebuilt here with integer ops: bit-exact;
* frame positions, rank pooling coefficients and linear temporal interpolation: numpy's arithmetic (float64
  ``linspace`` as ``k * step + start``, round half to even), so the same frames are picked.
"""

from __future__ import annotations

import tensorflow as tf

RAW_MODALITIES = ("dynamic_image", "frame", "clip")
INDEX_SAMPLERS = ("uniform", "apex_middle", "centered", "interpolate")
# OpenCV 4.x RGB2GRAY for 8-bit images: 0.299, 0.587, 0.114 in 15-bit fixed point, rounded
# (the same as cv2.cvtColor on all 2**24 colours, tests/export/test_preprocess.py).
_GREY_WEIGHTS = (9798, 19235, 3735)
_GREY_SHIFT = 15


def _f64(x):
    return tf.cast(x, tf.float64)


def _spaced(k, start, stop, div):
    """Point ``k`` of ``numpy.linspace(start, stop, div + 1)``: ``k * ((stop - start) / div) + start``, end exact."""
    div = _f64(div)
    # DivNoNan, not RealDiv: grappler rewrites a division by a constant as a multiplication by its reciprocal,
    # which moves 9 / 6 * 5 = 7.5 to 7.4999... and rounds to another frame than numpy.
    step = tf.math.divide_no_nan(stop - start, div)
    return tf.where(k >= div, stop, k * step + start)


def _uniform(length, apex, n: int):
    """Port of :func:`kerasmer.data.preprocess.samplers.sample_uniform` (float positions, before rounding)."""
    a, last = _f64(apex), _f64(length - 1)
    if n == 1:
        return tf.reshape(a, [1])
    if n == 2:
        return tf.stack([tf.constant(0.0, tf.float64), a])
    rise, fall = a, last - a
    n_rise = tf.round(tf.math.divide_no_nan((n - 1) * rise, rise + fall))
    n_rise = tf.where(rise > 0, tf.maximum(n_rise, 1.0), n_rise)  # keep the onset
    n_rise = tf.where(fall > 0, tf.minimum(n_rise, n - 2.0), n_rise)  # keep the offset
    k = tf.range(n, dtype=tf.float64)
    before = _spaced(k, tf.constant(0.0, tf.float64), a, n_rise)
    after = _spaced(k - n_rise, a, last, n - 1.0 - n_rise)
    return tf.where(k < n_rise, before, tf.where(k > n_rise, after, a))


def _apex_middle(length, apex, n: int):
    """Port of :func:`kerasmer.data.preprocess.samplers.sample_apex_middle` (the apex at ``n // 2``)."""
    a, last = _f64(apex), _f64(length - 1)
    n_before, n_after = n // 2, n - n // 2 - 1
    k = tf.range(n, dtype=tf.float64)
    before = _spaced(k, tf.constant(0.0, tf.float64), a, float(n_before))
    after = _spaced(k - n_before, a, last, float(n_after))
    return tf.where(k < n_before, before, tf.where(k > n_before, after, a))


def frame_positions(modality: str, sampler: str | None, length, apex, input_shape):
    """Graph twin of :func:`kerasmer.data.pipeline.inputs.frame_positions`: which frames a modality reads.

    Args:
        modality: ``"frame"``, ``"clip"`` or ``"dynamic_image"``.
        sampler: the clip sampler (``"uniform"``, ``"apex_middle"``, ``"centered"``, ``"interpolate"``).
        length: scalar int tensor, the clip's frames onset..offset.
        apex: scalar int tensor, the apex position in 0..length-1.
        input_shape: the model input shape (its first axis is T for clips).

    Returns:
        int32 tensor of positions in 0..length-1.

    Example:
        >>> frame_positions("clip", "uniform", 21, 4, (5, 32, 32, 3)).numpy().tolist()
        [0, 4, 9, 15, 20]
    """
    length, apex = tf.cast(length, tf.int32), tf.cast(apex, tf.int32)
    if modality == "frame":
        return tf.reshape(apex, [1])
    if modality == "dynamic_image" or sampler == "interpolate":
        return tf.range(length)
    n = int(input_shape[0])
    if sampler == "centered":
        return tf.clip_by_value(tf.range(n) + apex - n // 2, 0, length - 1)
    if sampler == "uniform":
        points = _uniform(length, apex, n)
    elif sampler == "apex_middle":
        points = _apex_middle(length, apex, n)
    else:
        raise ValueError(f"frame_positions: sampler must be one of {INDEX_SAMPLERS}, got {sampler!r}")
    return tf.cast(tf.clip_by_value(tf.round(points), 0.0, _f64(length - 1)), tf.int32)


def rgb_to_grey(frames):
    """OpenCV's ``COLOR_RGB2GRAY`` on uint8 ``(..., 3)`` frames, bit-exact; returns uint8 ``(..., 1)``.

    Example:
        >>> rgb_to_grey(tf.constant([[[255, 0, 0]]], tf.uint8)).numpy().ravel().tolist()
        [76]
    """
    x = tf.cast(frames, tf.int32)
    r, g, b = x[..., 0:1], x[..., 1:2], x[..., 2:3]
    w_r, w_g, w_b = _GREY_WEIGHTS
    grey = tf.bitwise.right_shift(r * w_r + g * w_g + b * w_b + (1 << (_GREY_SHIFT - 1)), _GREY_SHIFT)
    return tf.cast(grey, tf.uint8)


def _enlarge_taps(src, dst: int):
    """OpenCV's ``INTER_AREA`` taps along one axis when enlarging: two source indices and 11-bit weights each.

    OpenCV (imgproc/resize.cpp, ``area_mode``) puts output ``d`` at ``s = floor(d * src / dst)`` with the
    fraction ``f = (d + 1) - (s + 1) * dst / src`` (0 when not positive, else its fractional part), weights
    ``round((1 - f) * 2048)`` and ``round(f * 2048)``, and the last source index replicated.
    """
    src = tf.cast(src, tf.int32)
    inv = tf.cast(dst, tf.float64) / _f64(src)
    d = tf.range(dst, dtype=tf.float64)
    s = tf.floor(d * (1.0 / inv))
    frac = tf.cast((d + 1.0) - (s + 1.0) * inv, tf.float32)  # OpenCV holds it as a float
    frac = tf.where(frac <= 0.0, 0.0, frac - tf.floor(frac))
    s = tf.cast(s, tf.int32)
    frac = tf.where(s >= src - 1, 0.0, frac)
    s0 = tf.minimum(s, src - 1)
    s1 = tf.minimum(s0 + 1, src - 1)
    w1 = tf.cast(tf.round(frac * 2048.0), tf.int64)
    w0 = tf.cast(tf.round((1.0 - frac) * 2048.0), tf.int64)
    return s0, s1, w0, w1


def _enlarge(x, h: int, w: int):
    """uint8 ``(N, H, W, C)`` -> ``(N, h, w, C)`` as OpenCV's ``INTER_AREA`` when an axis is enlarged.

    Separable linear taps in fixed point, with the vertical pass's integer steps of OpenCV's SIMD code
    (``VResizeLinearVec_32s8u``: rows shifted right by 4, high 16 bits of the products, ``(sum + 2) >> 2``),
    which makes it bit-exact with ``cv2.resize`` (OpenCV 4.x, measured in tests/export/test_preprocess.py).
    """
    dims = tf.shape(x)
    xs0, xs1, xw0, xw1 = _enlarge_taps(dims[2], w)
    ys0, ys1, yw0, yw1 = _enlarge_taps(dims[1], h)
    v = tf.cast(x, tf.int64)
    cols = tf.gather(v, xs0, axis=2) * xw0[:, None] + tf.gather(v, xs1, axis=2) * xw1[:, None]

    def row_part(index, weight):
        return tf.bitwise.right_shift(tf.bitwise.right_shift(tf.gather(cols, index, axis=1), 4)
                                      * weight[:, None, None], 16)

    rows = row_part(ys0, yw0) + row_part(ys1, yw1)
    return tf.cast(tf.bitwise.right_shift(rows + 2, 2), tf.float32)


def _area_weights(src, dst: int):
    """OpenCV's ``INTER_AREA`` shrinking weights along one axis, a ``(dst, src)`` float32 matrix.

    Output ``d`` covers source ``[d * src / dst, (d + 1) * src / dst)``; each source pixel weighs its overlap
    with that cell over the cell's width (``computeResizeAreaTab`` in imgproc/resize.cpp, which drops edge
    slivers of at most 1e-3 and stores the weights as floats).
    """
    scale = _f64(src) / float(dst)
    start = tf.range(dst, dtype=tf.float64)[:, None] * scale
    pixel = tf.range(src, dtype=tf.float64)[None, :]
    cell = tf.minimum(scale, _f64(src) - start)
    overlap = tf.minimum(start + scale, pixel + 1.0) - tf.maximum(start, pixel)
    overlap = tf.where(overlap > 1e-3, overlap, tf.zeros_like(overlap))  # no overlap, or a sliver OpenCV drops
    return tf.cast(overlap / cell, tf.float32)


def _shrink(x, h: int, w: int, dims):
    """uint8 ``(N, H, W, C)`` -> float ``(N, h, w, C)`` whole numbers, OpenCV's area average when shrinking."""
    rows = tf.cast(_area_weights(dims[1], h), tf.float64)
    cols = tf.cast(_area_weights(dims[2], w), tf.float64)
    out = tf.einsum("hH,nHWc,wW->nhwc", rows, tf.cast(x, tf.float64), cols)
    halve = tf.logical_and(tf.equal(dims[1], 2 * h), tf.equal(dims[2], 2 * w))
    # OpenCV's 2 x 2 fast path rounds halves up ((sum + 2) >> 2); its other area paths round to even.
    return tf.cast(tf.cond(halve, lambda: tf.floor(out + 0.5), lambda: tf.round(out)), tf.float32)


def resize_frames(frames, size, channels: int):
    """Grey (for one channel) then resize uint8 ``(N, H, W, 3)`` frames as OpenCV's ``INTER_AREA`` does.

    Args:
        frames: uint8 ``(N, H, W, 3)`` RGB.
        size: ``(h, w)`` wanted.
        channels: 1 or 3.

    Returns:
        float32 ``(N, h, w, channels)`` holding whole numbers 0..255, as ``cv2.resize`` of uint8 gives.

    Example:
        >>> resize_frames(tf.zeros((2, 64, 48, 3), tf.uint8), (32, 32), 1).shape.as_list()
        [2, 32, 32, 1]
    """
    x = rgb_to_grey(frames) if channels == 1 else frames
    h, w = int(size[0]), int(size[1])
    dims = tf.shape(x)
    shrink = tf.logical_and(dims[1] >= h, dims[2] >= w)
    # OpenCV averages areas when shrinking both axes and interpolates otherwise: so do both branches here.
    out = tf.cond(shrink, lambda: _shrink(x, h, w, dims), lambda: _enlarge(x, h, w))
    return tf.ensure_shape(tf.clip_by_value(out, 0.0, 255.0), [None, h, w, channels])


def dynamic_image(frames):
    """Approximate rank pooling of float ``(T, H, W, C)`` frames, rescaled to 0..255 (graph twin of
    :func:`kerasmer.data.preprocess.dynamic_image.dynamic_image`; Bilen et al., CVPR 2016, eq. (4)-(5)).

    ``α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1})`` with ``H_t`` the harmonic numbers; a still clip gives zeros.

    Example:
        >>> float(tf.reduce_max(dynamic_image(tf.zeros((4, 2, 2, 1)))))
        0.0
    """
    count = tf.shape(frames)[0]
    t = tf.range(1, count + 1, dtype=tf.float64)
    harmonic = tf.concat([tf.zeros([1], tf.float64), tf.cumsum(1.0 / t)], 0)  # H_0..H_T
    total = _f64(count)
    alpha = 2.0 * (total - t + 1.0) - (total + 1.0) * (harmonic[-1] - harmonic[:-1])
    # float64 over time, as the numpy reference: long 8-bit clips stay exact.
    out = tf.tensordot(alpha, _f64(frames), axes=[[0], [0]])
    lo, hi = tf.reduce_min(out), tf.reduce_max(out)
    scaled = (out - lo) * (255.0 / tf.maximum(hi - lo, 1e-8))
    return tf.cast(tf.where(hi - lo > 1e-8, scaled, tf.zeros_like(out)), tf.float32)


def interpolate(frames, n: int):
    """Linear temporal interpolation to ``n`` frames (graph twin of
    :func:`kerasmer.data.preprocess.samplers.interpolate`); first and last frames are kept.

    Example:
        >>> interpolate(tf.constant([[0.0], [4.0]]), 3).numpy().ravel().tolist()
        [0.0, 2.0, 4.0]
    """
    frames = tf.convert_to_tensor(frames, tf.float32)
    count = tf.shape(frames)[0]
    if n == 1:
        return tf.gather(frames, [(count - 1) // 2])
    k = tf.range(n, dtype=tf.float64)
    pos = _spaced(k, tf.constant(0.0, tf.float64), _f64(count - 1), float(n - 1))
    lo = tf.cast(tf.floor(pos), tf.int32)
    hi = tf.minimum(lo + 1, count - 1)
    weight = tf.reshape(tf.cast(pos - tf.floor(pos), tf.float32), [n] + [1] * (frames.shape.rank - 1))
    return tf.gather(frames, lo) * (1.0 - weight) + tf.gather(frames, hi) * weight


def frames_to_input(frames, apex, *, modality: str, input_shape, sampler: str | None = None):
    """The model input from one clip's face-cropped frames, in standard TensorFlow ops.

    Args:
        frames: uint8 ``(T, H, W, 3)`` RGB, onset..offset.
        apex: scalar int, the apex position in 0..T-1 (``input_from_frames`` takes ``T // 2`` when none is known).
        modality: ``"frame"``, ``"clip"`` or ``"dynamic_image"``.
        input_shape: the model input shape without the batch axis.
        sampler: for clips (default ``"uniform"``).

    Returns:
        float32 model input, un-normalised (equal to ``input_from_frames`` within the tolerance above).

    Raises:
        ValueError: a modality that cannot be computed in-graph (``"flow"``) or an unknown sampler.

    Example:
        >>> x = frames_to_input(tf.zeros((9, 64, 64, 3), tf.uint8), 4, modality="dynamic_image",
        ...                     input_shape=(32, 32, 3))
        >>> x.shape.as_list()
        [32, 32, 3]
    """
    if modality not in RAW_MODALITIES:
        raise ValueError(f"frames_to_input: modality {modality!r} cannot be computed in-graph; "
                         f"in-graph modalities: {RAW_MODALITIES}")
    shape = tuple(int(d) for d in input_shape)
    sampler = sampler or "uniform"
    if modality == "clip" and sampler not in INDEX_SAMPLERS:
        raise ValueError(f"frames_to_input: sampler must be one of {INDEX_SAMPLERS}, got {sampler!r}")
    frames = tf.convert_to_tensor(frames, tf.uint8)
    length = tf.shape(frames)[0]
    apex = tf.cast(apex, tf.int32)
    checks = [tf.debugging.assert_positive(length, message="a clip needs at least one frame (T >= 1)"),
              tf.debugging.assert_less(apex, length, message="apex lies past the clip's last frame"),
              tf.debugging.assert_non_negative(apex, message="apex is negative")]
    with tf.control_dependencies(checks):
        picks = frame_positions(modality, sampler, length, apex, shape)
    x = resize_frames(tf.gather(frames, picks), shape[-3:-1], shape[-1])
    if modality == "dynamic_image":
        return dynamic_image(x)
    if modality == "frame":
        return x[0]
    if sampler == "interpolate":
        return interpolate(x, shape[0])
    return x


__all__ = ["RAW_MODALITIES", "dynamic_image", "frame_positions", "frames_to_input", "interpolate",
           "resize_frames", "rgb_to_grey"]
