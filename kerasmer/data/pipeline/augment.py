"""Training augmentation for :func:`kerasmer.data.make_dataset`: stateless, seeded, one transform per clip.

Image inputs (``"frame"``, ``"dynamic_image"``, ``"clip"`` and custom modalities)
get, each switchable in the ``augment=`` dict of ``make_dataset``:

========================= ==================================================================
key (default)             effect
========================= ==================================================================
``flip`` (True)           left-right flip with probability 0.5
``rotation`` (5.0)        rotation about the centre, uniform in ±degrees (reflected border)
``brightness`` (0.1)      add one value uniform in ±fraction × 255
``contrast`` (0.0)        scale about the clip's per-channel mean by a factor in 1 ± value
``color_shift`` (0.0)     add one value per colour channel, uniform in ±fraction × 255
``salt_pepper`` (0.0)     set this fraction of the pixels to 0 or 255 (half each)
========================= ==================================================================

The last three are off by default so that ``augment=None`` keeps the
flip/rotation/brightness recipe earlier versions used.  :data:`SHALLOW_AUGMENT`
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

DEFAULT_AUGMENT = {"flip": True, "rotation": 5.0, "brightness": 0.1, "contrast": 0.0, "color_shift": 0.0,
                   "salt_pepper": 0.0}
"""What ``augment=None`` / ``True`` applies during training."""

# The shallow Conv + multi-head self-attention paper, §3 "Evaluation": "The samples are augmented with
# horizontal flip, change in brightness and salt and pepper noise" (no rotation, contrast or colour shift;
# the paper gives no magnitudes, so brightness keeps the default's and the noise touches 1% of the pixels).
SHALLOW_AUGMENT = {"flip": True, "rotation": 0.0, "brightness": 0.1, "contrast": 0.0, "color_shift": 0.0,
                   "salt_pepper": 0.01}
"""Flip, brightness and salt-and-pepper noise, as in the shallow Conv + self-attention models' paper (§3).

The registry gives it to those models (``model_info(name).augment``)."""

PHOTOMETRIC = ("brightness", "contrast", "color_shift", "salt_pepper")


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
        for key in ("rotation",) + PHOTOMETRIC:
            value = float(settings[key])
            if value < 0 or (key != "rotation" and value > 1):
                raise ValueError(f"augment[{key!r}] must be in [0, {'180' if key == 'rotation' else '1'}], "
                                 f"got {settings[key]!r}")
    return settings


def _rotate(x, angle):
    """Rotate an (H, W, C) tensor about its centre by ``angle`` radians (bilinear, reflected border)."""
    import keras  # heavy: TensorFlow loads only when a dataset is built
    import tensorflow as tf

    h_f, w_f = tf.cast(tf.shape(x)[0], tf.float32), tf.cast(tf.shape(x)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # output->input map of a rotation about the image centre (keras affine_transform convention)
    cx, cy = (w_f - 1) / 2, (h_f - 1) / 2
    transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
    return keras.ops.image.affine_transform(x[None], transform[None], interpolation="bilinear",
                                            fill_mode="reflect", data_format="channels_last")[0]


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
    max_angle = math.radians(float(settings.get("rotation", 0.0)))
    flip = bool(settings.get("flip", False))
    brightness, contrast = float(settings.get("brightness", 0.0)), float(settings.get("contrast", 0.0))
    color_shift, salt_pepper = float(settings.get("color_shift", 0.0)), float(settings.get("salt_pepper", 0.0))
    channels = int(input_shape[-1])

    def apply(x, rnd):
        # sub-seeds s + [0, k]: k = 1..3 as in earlier versions, so their outputs are unchanged
        s = tf.stack([tf.cast(rnd, tf.int64), tf.constant(seed, tf.int64)])
        if clip:  # fold T into channels so one transform moves every frame alike
            t, h, w, c = input_shape
            x = tf.reshape(tf.transpose(x, (1, 2, 0, 3)), (h, w, t * c))
        if flip:
            do = tf.random.stateless_uniform((), seed=s + [0, 1]) < 0.5
            x = tf.cond(do, lambda: tf.reverse(x, axis=[1]), lambda: x)
        if max_angle > 0:
            x = _rotate(x, tf.random.stateless_uniform((), seed=s + [0, 2], minval=-max_angle, maxval=max_angle))
        if clip:
            x = tf.transpose(tf.reshape(x, (h, w, t, c)), (2, 0, 1, 3))
        if brightness > 0:
            x = x + tf.random.stateless_uniform((), seed=s + [0, 3], minval=-brightness, maxval=brightness) * 255.0
        if contrast > 0:
            factor = tf.random.stateless_uniform((), seed=s + [0, 4], minval=1 - contrast, maxval=1 + contrast)
            mean = tf.reduce_mean(tf.reshape(x, (-1, channels)), axis=0)  # whole clip: one map for all frames
            x = (x - mean) * factor + mean
        if color_shift > 0:
            x = x + tf.random.stateless_uniform((channels,), seed=s + [0, 5], minval=-color_shift,
                                                maxval=color_shift) * 255.0
        if brightness > 0 or contrast > 0 or color_shift > 0:
            x = tf.clip_by_value(x, 0.0, 255.0)
        if salt_pepper > 0:
            shape = tf.concat([tf.shape(x)[:-1], [1]], axis=0)  # per pixel (and frame), shared by channels
            u = tf.random.stateless_uniform(shape, seed=s + [0, 6])
            x = tf.where(u < salt_pepper / 2, 0.0, tf.where(u > 1 - salt_pepper / 2, 255.0, x))
        return x

    return apply


def make_flow_augment(*, flip: bool = True, rotation: float = 5.0, seed: int = 0):
    """Augmentation for ``(u, v, strain)`` inputs, in TensorFlow, for ``tf.data`` maps.

    A flow field is not an image: flipping left-right must also negate u, and
    rotating must rotate the (u, v) vectors as well as move them.  Brightness
    changes have no meaning for flow (and clipping to [0, 255] would erase
    every negative displacement), so there are none.  Strain is a scalar and
    is only moved.

    Args:
        flip: random left-right flip (probability 0.5).
        rotation: largest rotation in degrees, uniform in ``[-rotation, rotation]``.
        seed: fixed part of the stateless random seed.

    Returns:
        ``apply(x, rnd) -> x``: ``x`` a ``(H, W, 3)`` float tensor, ``rnd`` an
        int scalar drawn per element and epoch (as ``make_dataset`` does with
        ``tf.data.Dataset.random``); the same ``(rnd, seed)`` gives the same transform.

    Example:
        >>> augment = make_flow_augment(rotation=5.0)  # doctest: +SKIP
        >>> ds = tf.data.Dataset.zip((xs, tf.data.Dataset.random(seed=0))).map(augment)  # doctest: +SKIP
    """
    import keras  # heavy: TensorFlow loads only when a dataset is built
    import tensorflow as tf

    max_angle = math.radians(float(rotation))

    def apply(x, rnd):
        s = tf.stack([tf.cast(rnd, tf.int64), tf.constant(seed, tf.int64)])
        u, v, strain = x[..., 0], x[..., 1], x[..., 2]
        if flip:
            do = tf.random.stateless_uniform((), seed=s + [0, 1]) < 0.5
            u = tf.where(do, -tf.reverse(u, axis=[1]), u)
            v = tf.where(do, tf.reverse(v, axis=[1]), v)
            strain = tf.where(do, tf.reverse(strain, axis=[1]), strain)
        x = tf.stack([u, v, strain], axis=-1)
        if max_angle > 0:
            angle = tf.random.stateless_uniform((), seed=s + [0, 2], minval=-max_angle, maxval=max_angle)
            h, w = tf.cast(tf.shape(x)[0], tf.float32), tf.cast(tf.shape(x)[1], tf.float32)
            cos, sin = tf.cos(angle), tf.sin(angle)
            cx, cy = (w - 1) / 2, (h - 1) / 2
            # output pixel -> input pixel is a rotation by +angle about the centre, so a
            # displacement d at the input is R(-angle) d at the output
            transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
            x = keras.ops.image.affine_transform(x[None], transform[None], interpolation="bilinear",
                                                 fill_mode="reflect", data_format="channels_last")[0]
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
        asked = [k for k in PHOTOMETRIC if k in user_keys and float(settings[k]) > 0]
        if asked:
            raise ValueError(f"augment: {asked} cannot be applied to 'flow' inputs (displacements, not "
                             "intensities); flow gets flip (negating u) and rotation only")
        return make_flow_augment(flip=bool(settings["flip"]), rotation=float(settings["rotation"]), seed=seed)
    return image_augment(settings, input_shape, seed)


__all__ = ["DEFAULT_AUGMENT", "SHALLOW_AUGMENT", "image_augment", "make_augment", "make_flow_augment",
           "resolve_augment"]
