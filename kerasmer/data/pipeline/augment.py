"""Training augmentation for :func:`kerasmer.data.make_dataset`: stateless, seeded, one transform per clip.

Image inputs (``"frame"``, ``"dynamic_image"``, ``"clip"`` and custom modalities)
get, each switchable in the ``augment=`` dict of ``make_dataset``:

========================= ==================================================================
key (default)             effect
========================= ==================================================================
``flip`` (True)           left-right flip with probability 0.5
``vertical_flip`` (False) up-down flip with probability 0.5 (LARNet §4.2.1)
``rotation`` (5.0)        rotation about the centre, uniform in ±degrees (reflected border)
``rotation_step`` (0.0)   > 0: the angle is instead drawn uniformly from the multiples of this
                          many degrees in ±``rotation`` (LEARNet's pool: ±45° by 15°)
``brightness`` (0.1)      add one value uniform in ±fraction × 255
``contrast`` (0.0)        scale about the clip's per-channel mean by a factor in 1 ± value
``color_shift`` (0.0)     add one value per colour channel, uniform in ±fraction × 255
``salt_pepper`` (0.0)     set this fraction of the pixels to 0 or 255 (half each)
``corner_crop`` (0.0)     crop one of the four corners, this fraction of each side, and resize
                          it back (Micro-Attention's 224-of-240 crops: ``224 / 240``); 0 = off
``smoothing`` (0)         box blur with a window drawn uniformly in 1..value pixels; 0 = off
``pad_crop`` (0)          pad this many pixels of 0 on each side and crop the original size at a
                          random offset (LARNet's "padded by four pixels"); 0 = off
``equalize`` (0.0)        the chance that a clip is histogram-equalised, each frame and channel
                          on its own (OpenCV's ``equalizeHist`` mapping; LEARNet's enhancement)
``probability`` (1.0)     the chance that each of rotation, brightness, contrast, colour
                          shift, corner crop and smoothing is applied to a clip (independent
                          draws; Micro-Attention's "selecting probability of 0.5")
========================= ==================================================================

Contrast, colour shift, salt-and-pepper, corner crop, smoothing and equalisation are off by
default so that ``augment=None`` keeps the flip/rotation/brightness recipe
earlier versions used; ``probability`` 1.0 draws no gates, so those outputs
are unchanged too.  :data:`SHALLOW_AUGMENT`
is the shallow Conv + self-attention models' recipe: flip, brightness and
salt-and-pepper noise, no rotation.

Consistency across a clip's frames: the geometric transforms (flip, rotation)
and the photometric ones (brightness, contrast, colour shift) are drawn once
per clip and applied identically to every frame (frames are folded into the
channel axis for the warp, and contrast uses the whole clip's mean), so they
add no fake motion between frames.  Salt-and-pepper noise is drawn
independently for every frame (and shared by a pixel's channels), as sensor
noise would be: freezing one noise pattern across a clip would instead add a
fixed texture that the model could learn.

Flow inputs (``(u, v, strain)``) use :func:`make_flow_augment`
instead: flip (negating u) and rotation (rotating the vectors); the
photometric keys have no meaning for displacements and are refused.
"""

from __future__ import annotations

import math
from typing import Mapping

DEFAULT_AUGMENT = {"flip": True, "vertical_flip": False, "rotation": 5.0, "rotation_step": 0.0, "brightness": 0.1,
                   "contrast": 0.0, "color_shift": 0.0, "salt_pepper": 0.0, "corner_crop": 0.0, "smoothing": 0,
                   "pad_crop": 0, "equalize": 0.0, "probability": 1.0}
"""What ``augment=None`` / ``True`` applies during training."""

# The shallow Conv + multi-head self-attention paper, §3 "Evaluation": "The samples are augmented with
# horizontal flip, change in brightness and salt and pepper noise" (no rotation, contrast or colour shift;
# the paper gives no magnitudes, so brightness keeps the default's and the noise touches 1% of the pixels).
SHALLOW_AUGMENT = {"flip": True, "rotation": 0.0, "brightness": 0.1, "contrast": 0.0, "color_shift": 0.0,
                   "salt_pepper": 0.01}
"""Flip, brightness and salt-and-pepper noise, as in the shallow Conv + self-attention models' paper (§3).

The registry gives it to those models (``model_info(name).augment``)."""

PHOTOMETRIC = ("brightness", "contrast", "color_shift", "salt_pepper", "equalize")
IMAGE_ONLY = PHOTOMETRIC + ("corner_crop", "smoothing", "vertical_flip", "pad_crop")  # not written for flow vectors


def resolve_augment(augment, training: bool) -> dict | None:
    """The augmentation settings ``make_dataset`` uses, or ``None`` for none.

    Args:
        augment: ``None`` (augment iff ``training``), ``True``/``False``, or a dict
            overriding some keys of :data:`DEFAULT_AUGMENT`.
        training: whether the dataset is for training.

    Returns:
        A full settings dict, or ``None``.

    Raises:
        ValueError: an unknown key or a negative / out-of-range value (named).

    Example:
        >>> resolve_augment({"contrast": 0.2}, True)["contrast"]
        0.2
        >>> resolve_augment(None, False) is None
        True
    """
    if augment is None:
        augment = training
    if isinstance(augment, Mapping):
        unknown = sorted(set(augment) - set(DEFAULT_AUGMENT))
        if unknown:
            raise ValueError(f"augment: unknown key(s) {unknown}; known {sorted(DEFAULT_AUGMENT)}")
        settings = dict(DEFAULT_AUGMENT, **augment)
    elif isinstance(augment, bool):
        settings = dict(DEFAULT_AUGMENT) if augment else None
    else:
        raise TypeError(f"augment must be None, a bool or a dict, got {type(augment).__name__}")
    if settings is not None:
        _check_ranges(settings)
    return settings


def _check_ranges(settings: Mapping) -> None:
    """Raise ValueError naming the first key whose value is out of its range."""
    limits = {"rotation": 180.0, "rotation_step": 180.0, "corner_crop": 1.0, "probability": 1.0,
              "smoothing": 64.0, "pad_crop": 64.0, **{k: 1.0 for k in PHOTOMETRIC}}
    for key, top in limits.items():
        value = float(settings[key])
        if not 0 <= value <= top:
            raise ValueError(f"augment[{key!r}] must be in [0, {top:g}], got {settings[key]!r}")
    for key in ("smoothing", "pad_crop"):
        if float(settings[key]) != int(float(settings[key])):
            raise ValueError(f"augment[{key!r}] is a size in pixels (an int), got {settings[key]!r}")
    if float(settings["rotation_step"]) > float(settings["rotation"]):
        raise ValueError(f"augment['rotation_step'] ({settings['rotation_step']!r}) exceeds augment['rotation'] "
                         f"({settings['rotation']!r}): no angle but 0 could be drawn")


# From this many channels up (a clip's frames folded into channels), :func:`_rotate` samples with gathers: the
# coordinates are worked out once per pixel and shared by its channels, where TensorFlow's kernel works them out
# for every channel.  Below it, the kernel is faster (measured in docs/benchmarks.md, "Input pipeline").
GATHER_MIN_CHANNELS = 12


def _rotate(x, angle):
    """Rotate an (H, W, C) tensor about its centre by ``angle`` radians (bilinear, reflected border).

    The same values, bit for bit, either way: Keras' ``affine_transform`` (TensorFlow's
    ``ImageProjectiveTransformV3``) below :data:`GATHER_MIN_CHANNELS` channels, :func:`_rotate_gather` from it.
    """
    import keras  # heavy: TensorFlow loads only when a dataset is built
    import tensorflow as tf

    if x.shape[-1] is not None and x.shape[-1] >= GATHER_MIN_CHANNELS and None not in x.shape[:2]:
        return _rotate_gather(x, _rotation_transform(angle, x.shape[0], x.shape[1]))
    transform = _rotation_transform(angle, tf.cast(tf.shape(x)[0], tf.float32), tf.cast(tf.shape(x)[1], tf.float32))
    return keras.ops.image.affine_transform(x[None], tf.stack(transform + [0.0, 0.0])[None], interpolation="bilinear",
                                            fill_mode="reflect", data_format="channels_last")[0]


def _rotation_transform(angle, h, w) -> list:
    """The output->input map of a rotation about the image centre, ``[a0, a1, a2, b0, b1, b2]`` (Keras'
    ``affine_transform`` convention: input x = a0 x + a1 y + a2, input y = b0 x + b1 y + b2)."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    return [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy]


def _reflect(coord, size: int):
    """TensorFlow's ``FILL_REFLECT`` coordinate map (``dcba|abcd|dcba``), then the clamp to ``[0, size - 1]``,
    with the kernel's own float operations, so that the sampled values are the kernel's."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    n, twice = float(size), 2.0 * size
    if size <= 1:
        return tf.zeros_like(coord)
    low = twice * tf.cast(tf.cast(-coord / twice, tf.int64), tf.float32) + coord
    low = tf.where(low < -n, low + twice, -low - 1.0)
    high = coord - twice * tf.cast(tf.cast(coord / twice, tf.int64), tf.float32)
    high = tf.where(high >= n, twice - high - 1.0, high)
    return tf.clip_by_value(tf.where(coord < 0, low, tf.where(coord > n - 1, high, coord)), 0.0, n - 1.0)


def _rotate_gather(x, t: list):
    """Bilinear sampling of an (H, W, C) tensor (static H, W) at ``t``'s input coordinates, reflected border.

    Each pixel's four neighbours are gathered as rows of C values; a neighbour past the last row or column (read
    with weight 0 at the border) is a row of zeros, as the kernel's fill value.
    """
    import numpy as np
    import tensorflow as tf  # heavy: loads only when a dataset is built

    h, w, c = int(x.shape[0]), int(x.shape[1]), int(x.shape[2])
    ys, xs = (tf.constant(v) for v in np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                                                  indexing="ij"))
    in_x = _reflect(t[0] * xs + t[1] * ys + t[2], w)
    in_y = _reflect(t[3] * xs + t[4] * ys + t[5], h)
    x0, y0 = tf.floor(in_x), tf.floor(in_y)
    # rows of a (H + 1) x (W + 1) image padded with zeros: index (y, x) is y * (W + 1) + x
    rows = tf.reshape(tf.pad(x, [[0, 1], [0, 1], [0, 0]]), ((h + 1) * (w + 1), c))
    first = tf.cast(y0, tf.int32) * (w + 1) + tf.cast(x0, tf.int32)
    top_left, top_right = tf.gather(rows, first), tf.gather(rows, first + 1)
    bottom_left, bottom_right = tf.gather(rows, first + w + 1), tf.gather(rows, first + w + 2)
    wx1, wy1 = (in_x - x0)[..., None], (in_y - y0)[..., None]
    wx0, wy0 = ((x0 + 1) - in_x)[..., None], ((y0 + 1) - in_y)[..., None]
    top = wx0 * top_left + wx1 * top_right
    bottom = wx0 * bottom_left + wx1 * bottom_right
    return wy0 * top + wy1 * bottom


def _corner_crop(x, fraction: float, corner, size):
    """One of the four corners (``corner`` 0..3), ``fraction`` of each side, resized back to ``size`` (H, W).

    Micro-Attention (CDE, LOSO): "cropping the four corners of the original image with size of 240×240 into a
    'new' one with size of 224×224 and resizing it to the previous size", i.e. ``fraction = 224 / 240``.
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    h, w = int(size[0]), int(size[1])
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    corner = tf.cast(corner, tf.int32)
    top, left = (h - ch) * (corner // 2), (w - cw) * (corner % 2)
    crop = tf.slice(x, tf.stack([top, left, 0]), tf.stack([ch, cw, -1]))
    return tf.image.resize(crop, (h, w), method="bilinear")


def _pad_crop(x, pad: int, offset, size):
    """Pad an (H, W, C) tensor with ``pad`` pixels of 0 on each side, then crop (H, W) at ``offset`` (two ints in
    ``0..2 pad``).  LARNet §4.2.1, after Wang et al.'s CIFAR recipe: "padded by four pixels on each side"."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    padded = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]])
    return tf.slice(padded, tf.stack([offset[0], offset[1], 0]), [int(size[0]), int(size[1]), int(x.shape[-1])])


def _smooth(x, window, largest: int):
    """Box blur of an (H, W, C) tensor with a ``window`` × ``window`` mean (1 = unchanged), ``window <= largest``.

    Micro-Attention's pretraining: "smoothing with maximum window size of 6".  TensorFlow's average pool
    with SAME padding averages the pixels inside the image only, so borders do not darken.
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    def box(k):
        return lambda: x if k == 1 else tf.nn.avg_pool2d(x[None], k, 1, "SAME")[0]

    return tf.switch_case(tf.cast(window, tf.int32) - 1, [box(k) for k in range(1, largest + 1)])


def image_augment(settings: Mapping, input_shape, seed: int):
    """Stateless augmentation ``apply(x, rnd) -> x`` of one image or clip in [0, 255].

    Args:
        settings: a full settings dict (see :func:`resolve_augment`).
        input_shape: ``(H, W, C)`` or ``(T, H, W, C)``.
        seed: fixed part of the stateless seed.

    Returns:
        ``apply(x, rnd)``: ``x`` a float tensor of ``input_shape``, ``rnd`` an int
        scalar drawn per element and epoch; the same ``(rnd, seed)`` gives the same output.

    Example:
        >>> apply = image_augment(resolve_augment(True, True), (4, 32, 32, 3), seed=0)  # doctest: +SKIP
        >>> y = apply(x, tf.constant(7, tf.int64))  # doctest: +SKIP
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    clip = len(input_shape) == 4
    geometric, photometric = _geometric_ops(settings, input_shape), _photometric_ops(settings, input_shape)

    def apply(x, rnd):
        # sub-seeds s + [0, k]: k = 1..6 as in earlier versions, so their outputs are unchanged
        s = tf.stack([tf.cast(rnd, tf.int64), tf.cast(seed, tf.int64)])  # seed: an int or a traced int64
        if clip:  # fold T into channels so one transform moves every frame alike
            t, h, w, c = input_shape
            x = tf.reshape(tf.transpose(x, (1, 2, 0, 3)), (h, w, t * c))
        x = geometric(x, s)
        if clip:
            x = tf.transpose(tf.reshape(x, (h, w, t, c)), (2, 0, 1, 3))
        return photometric(x, s)

    return apply


def _draw_angle(max_angle: float, step: float, s):
    """The rotation angle in radians on sub-seed ``s + [0, 2]``: uniform in ``±max_angle``, or, with ``step > 0``,
    uniform over the multiples of ``step`` in ``±max_angle`` (LEARNet §IV: "rotated between [-45°, 45°] with the
    increment of 15°", seven angles, 0° among them)."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    if step > 0:
        n = int(math.floor(max_angle / step + 1e-6))  # 1e-6: 45 / 15 in radians is 2.9999999999999996
        k = tf.random.stateless_uniform((), seed=s + [0, 2], minval=-n, maxval=n + 1, dtype=tf.int32)
        return tf.cast(k, tf.float32) * step
    return tf.random.stateless_uniform((), seed=s + [0, 2], minval=-max_angle, maxval=max_angle)


def _gate(probability: float, s, k: int):
    """1.0 with ``probability`` (a fresh stateless draw on sub-seed ``10 + k``); the constant 1.0 when it is 1."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    if probability >= 1.0:
        return 1.0  # no draw: outputs equal those of versions without ``probability``
    return tf.cast(tf.random.stateless_uniform((), seed=s + [0, 10 + k]) < probability, tf.float32)


def _geometric_ops(settings: Mapping, input_shape):
    """``fn(x, s)``: flip, rotation, corner crop and smoothing of an (H, W, C') tensor (frames folded into C')."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    max_angle = math.radians(float(settings.get("rotation", 0.0)))
    step = math.radians(float(settings.get("rotation_step", 0.0)))
    flip, p = bool(settings.get("flip", False)), float(settings.get("probability", 1.0))
    crop, window = float(settings.get("corner_crop", 0.0)), int(settings.get("smoothing", 0))
    vflip, pad = bool(settings.get("vertical_flip", False)), int(settings.get("pad_crop", 0))
    size = tuple(input_shape)[-3:-1]

    def geometric(x, s):
        if flip:
            do = tf.random.stateless_uniform((), seed=s + [0, 1]) < 0.5
            x = tf.cond(do, lambda: tf.reverse(x, axis=[1]), lambda: x)
        if vflip:  # sub-seeds 19 and 20: clear of the gates' 10 + k
            do = tf.random.stateless_uniform((), seed=s + [0, 19]) < 0.5
            x = tf.cond(do, lambda: tf.reverse(x, axis=[0]), lambda: x)
        if max_angle > 0:
            x = _rotate(x, _draw_angle(max_angle, step, s) * _gate(p, s, 2))
        if pad > 0:
            x = _pad_crop(x, pad, tf.random.stateless_uniform((2,), seed=s + [0, 20], minval=0, maxval=2 * pad + 1,
                                                              dtype=tf.int32), size)
        if 0 < crop < 1:
            corner = tf.random.stateless_uniform((), seed=s + [0, 7], minval=0, maxval=4, dtype=tf.int32)
            x = tf.cond(_gate(p, s, 7) > 0, lambda: _corner_crop(x, crop, corner, size), lambda: x)
        if window > 1:
            k = tf.random.stateless_uniform((), seed=s + [0, 8], minval=1, maxval=window + 1, dtype=tf.int32)
            x = _smooth(x, tf.where(_gate(p, s, 8) > 0, k, 1), window)
        return x

    return geometric


def _photometric_ops(settings: Mapping, input_shape):
    """``fn(x, s)``: brightness, contrast, colour shift (one draw per clip) and salt-and-pepper (per frame)."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    brightness, contrast = float(settings.get("brightness", 0.0)), float(settings.get("contrast", 0.0))
    color_shift, salt_pepper = float(settings.get("color_shift", 0.0)), float(settings.get("salt_pepper", 0.0))
    p, channels = float(settings.get("probability", 1.0)), int(input_shape[-1])
    equalize = float(settings.get("equalize", 0.0))

    def photometric(x, s):
        if equalize > 0:  # first: LEARNet equalises the rotated image, before anything else touches it
            do = tf.random.stateless_uniform((), seed=s + [0, 9]) < equalize
            x = tf.cond(do, lambda: equalize_histogram(x), lambda: x)
        if brightness > 0:
            delta = tf.random.stateless_uniform((), seed=s + [0, 3], minval=-brightness, maxval=brightness)
            x = x + delta * 255.0 * _gate(p, s, 3)
        if contrast > 0:
            factor = tf.random.stateless_uniform((), seed=s + [0, 4], minval=1 - contrast, maxval=1 + contrast)
            factor = 1.0 + (factor - 1.0) * _gate(p, s, 4)
            mean = tf.reduce_mean(tf.reshape(x, (-1, channels)), axis=0)  # whole clip: one map for all frames
            x = (x - mean) * factor + mean
        if color_shift > 0:
            shift = tf.random.stateless_uniform((channels,), seed=s + [0, 5], minval=-color_shift,
                                                maxval=color_shift)
            x = x + shift * 255.0 * _gate(p, s, 5)
        if brightness > 0 or contrast > 0 or color_shift > 0:
            x = tf.clip_by_value(x, 0.0, 255.0)
        if salt_pepper > 0:
            shape = tf.concat([tf.shape(x)[:-1], [1]], axis=0)  # per pixel (and frame), shared by channels
            u = tf.random.stateless_uniform(shape, seed=s + [0, 6])
            x = tf.where(u < salt_pepper / 2, 0.0, tf.where(u > 1 - salt_pepper / 2, 255.0, x))
        return x

    return photometric


def equalize_histogram(x):
    """Histogram equalisation of every frame and channel of an (H, W, C) or (T, H, W, C) tensor in [0, 255].

    OpenCV's ``equalizeHist`` mapping, in float32 as it computes it: a value's level is ``floor(x)``, the lowest
    level present maps to 0 and level ``i`` to ``round((cdf(i) - cdf(lowest)) * 255 / (pixels - cdf(lowest)))``;
    a channel with one level only is left as it is.  On integer values it equals ``cv2.equalizeHist`` per channel
    (``tests/data/test_augment_equalize.py``).  LEARNet (Verma et al., IEEE TIP 2019, §IV): "enhanced by
    histogram equalization".

    Args:
        x: float tensor, values in [0, 255] (others are clipped to it for the histogram).

    Returns:
        A float32 tensor of ``x``'s shape, values on the 256 levels.

    Example:
        >>> y = equalize_histogram(tf.constant(image, tf.float32))  # doctest: +SKIP
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    x = tf.convert_to_tensor(x, tf.float32)
    shape, rank = tf.shape(x), len(x.shape)
    order = (2, 0, 1) if rank == 3 else (0, 3, 1, 2)  # channels (and frames) first, pixels last
    planes = tf.transpose(x, order)
    flat = tf.reshape(planes, (-1, shape[-3] * shape[-2]))
    levels = tf.cast(tf.clip_by_value(tf.floor(flat), 0.0, 255.0), tf.int32)
    hist = tf.math.bincount(levels, minlength=256, maxlength=256, axis=-1)
    cdf = tf.cumsum(hist, axis=-1)
    lowest = tf.reduce_min(tf.where(hist > 0, cdf, tf.reduce_max(cdf, axis=-1, keepdims=True)), axis=-1,
                           keepdims=True)  # the count of the lowest level present
    total = tf.cast(tf.shape(flat)[-1], tf.int32)
    single = lowest == total  # one level only: OpenCV leaves it
    scale = 255.0 / tf.cast(tf.maximum(total - lowest, 1), tf.float32)
    lut = tf.clip_by_value(tf.round(tf.cast(cdf - lowest, tf.float32) * scale), 0.0, 255.0)
    mapped = tf.where(single, flat, tf.gather(lut, levels, batch_dims=1))
    inverse = (1, 2, 0) if rank == 3 else (0, 2, 3, 1)
    return tf.transpose(tf.reshape(mapped, tf.shape(planes)), inverse)


def make_flow_augment(*, flip: bool = True, rotation: float = 5.0, seed: int = 0, rotation_step: float = 0.0):
    """Augmentation for ``(u, v, strain)`` inputs, in TensorFlow, for ``tf.data`` maps.

    A flow field is not an image: flipping left-right must also negate u, and
    rotating must rotate the (u, v) vectors as well as move them.  Brightness
    changes have no meaning for flow (and clipping to [0, 255] would erase
    every negative displacement), so there are none.  Strain is a scalar and
    is only moved.

    Args:
        flip: random left-right flip (probability 0.5).
        rotation: largest rotation in degrees, uniform in ``[-rotation, rotation]``.
        rotation_step: > 0: the angle is drawn from the multiples of this many degrees instead.
        seed: fixed part of the stateless random seed.

    Returns:
        ``apply(x, rnd) -> x``: ``x`` a ``(H, W, 3)`` float tensor, ``rnd`` an
        int scalar drawn per element and epoch (as ``make_dataset`` does with
        ``tf.data.Dataset.random``); the same ``(rnd, seed)`` gives the same transform.

    Example:
        >>> augment = make_flow_augment(rotation=5.0)  # doctest: +SKIP
        >>> ds = tf.data.Dataset.zip((xs, tf.data.Dataset.random(seed=0))).map(augment)  # doctest: +SKIP
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    max_angle, step = math.radians(float(rotation)), math.radians(float(rotation_step))

    def apply(x, rnd):
        s = tf.stack([tf.cast(rnd, tf.int64), tf.cast(seed, tf.int64)])  # seed: an int or a traced int64
        u, v, strain = x[..., 0], x[..., 1], x[..., 2]
        if flip:
            do = tf.random.stateless_uniform((), seed=s + [0, 1]) < 0.5
            u = tf.where(do, -tf.reverse(u, axis=[1]), u)
            v = tf.where(do, tf.reverse(v, axis=[1]), v)
            strain = tf.where(do, tf.reverse(strain, axis=[1]), strain)
        x = tf.stack([u, v, strain], axis=-1)
        if max_angle > 0:
            angle = _draw_angle(max_angle, step, s)
            # output pixel -> input pixel is a rotation by +angle about the centre, so a
            # displacement d at the input is R(-angle) d at the output
            x = _rotate(x, angle)
            cos, sin = tf.cos(angle), tf.sin(angle)
            u, v = x[..., 0], x[..., 1]
            x = tf.stack([cos * u + sin * v, -sin * u + cos * v, x[..., 2]], axis=-1)
        return x

    return apply


def make_augment(settings: Mapping, input_shape, seed: int, modality: str, user_keys=()):
    """The augmentation function for a modality: flow's own for ``"flow"``, :func:`image_augment` otherwise.

    Args:
        settings: full settings (see :func:`resolve_augment`).
        input_shape: the input shape without batch.
        seed: fixed part of the stateless seed.
        modality: the input modality.
        user_keys: keys the caller set explicitly; photometric ones are refused for flow.

    Returns:
        ``apply(x, rnd) -> x``.

    Raises:
        ValueError: a photometric augmentation asked for a flow input.

    Example:
        >>> apply = make_augment(resolve_augment(True, True), (28, 28, 3), 0, "flow")  # doctest: +SKIP
    """
    if modality == "flow":
        asked = [k for k in IMAGE_ONLY if k in user_keys and float(settings[k]) > 0]
        if asked:
            raise ValueError(f"augment: {asked} cannot be applied to 'flow' inputs (displacements, not "
                             "intensities); flow gets flip (negating u) and rotation only")
        return make_flow_augment(flip=bool(settings["flip"]), rotation=float(settings["rotation"]), seed=seed,
                                 rotation_step=float(settings["rotation_step"]))
    return image_augment(settings, input_shape, seed)


__all__ = ["DEFAULT_AUGMENT", "SHALLOW_AUGMENT", "equalize_histogram", "image_augment", "make_augment",
           "make_flow_augment", "resolve_augment"]
