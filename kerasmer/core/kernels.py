"""Backend kernels that ``keras.ops`` lacks, in one place, each beside the test that decides when it applies.

Model code uses ``keras.ops`` only.  A layer that needs a fused kernel asks this module whether the
running backend has one for its input (``*_supported``) and otherwise computes through ``keras.ops``
itself, so every model still builds and trains on any Keras backend.  Only this module names
TensorFlow's raw ops.

**Fused batch normalisation** (issue 16).  Keras 3's ``BatchNormalization`` is written with
``keras.ops``: under ``mixed_bfloat16`` a training step runs each batch norm as separate casts,
means, squared differences, multiplies and adds, forward and backward (about 470 ``Mul`` ops in one
resnet3d18 step for 20 layers).  TensorFlow's ``FusedBatchNormV3`` and its gradient do the same
arithmetic in a few passes over the tensor, take bfloat16 or float16 activations with float32
statistics, and compute in float32 inside.  Measured on resnet3d18, batch 8 of 16×112×112×3 clips,
``mixed_bfloat16``, 2 cores (interleaved probe, 2026-11-30): 5.49 s per training step with Keras' batch
norm, 5.15 s with the fused one, 4.87 s with no batch norm at all.  The results differ from Keras'
only by float rounding (another summation order); ``tests/layers/test_batch_norm.py`` bounds
the difference.

Example:
    >>> import numpy as np
    >>> x = np.ones((2, 3, 3, 4), "float32")
    >>> fused_batch_norm_supported(x, axis=-1)   # doctest: +SKIP
    True
"""

from __future__ import annotations

import keras

# Activation dtypes TensorFlow's FusedBatchNormV3 takes (its statistics and affine stay float32).
FUSED_BATCH_NORM_DTYPES = ("float16", "bfloat16", "float32")
# Data formats of FusedBatchNormV3 for channels-last inputs, by rank.
_CHANNELS_LAST = {4: "NHWC", 5: "NDHWC"}


def fused_batch_norm_supported(x, axis: int) -> bool:
    """Whether :func:`fused_batch_norm` can normalise ``x`` over all axes but ``axis``.

    Args:
        x: the activations (a tensor with a static rank and dtype).
        axis: the channel axis.

    Returns:
        True on the TensorFlow backend for a 4-D or 5-D ``x`` of a supported dtype whose channel axis is
        the last one (TensorFlow's CPU kernel takes channels-last only).

    Example:
        >>> fused_batch_norm_supported(keras.ops.ones((2, 4)), axis=-1)
        False
    """
    rank = len(x.shape)
    return (keras.backend.backend() == "tensorflow" and rank in _CHANNELS_LAST
            and axis in (-1, rank - 1) and keras.backend.standardize_dtype(x.dtype) in FUSED_BATCH_NORM_DTYPES)


def fused_batch_norm(x, scale, offset, mean, variance, *, epsilon: float, training: bool):
    """``scale * (x - m) / sqrt(v + epsilon) + offset`` per channel, in one TensorFlow kernel.

    In training ``m`` and ``v`` are the batch's mean and (biased) variance over every axis but the
    last; otherwise they are ``mean`` and ``variance``.  Gradients flow to ``x``, ``scale`` and
    ``offset`` through TensorFlow's registered ``FusedBatchNormGradV3``.

    Args:
        x: channels-last activations for which :func:`fused_batch_norm_supported` holds.
        scale, offset: float32 vectors of the channel count.
        mean, variance: float32 vectors; read only when ``training`` is false.
        epsilon: added to the variance.
        training: normalise by the batch's statistics (true) or by ``mean`` and ``variance``.

    Returns:
        ``(y, batch_mean, batch_variance)``: ``y`` in ``x``'s dtype; in training the batch's mean and its
        *biased* variance (TensorFlow's kernel returns the unbiased one, with Bessel's correction; Keras
        updates its moving variance with the biased one, so it is converted back here); otherwise
        ``mean`` and ``variance``.

    Example:
        >>> y, m, v = fused_batch_norm(x, g, b, mm, mv, epsilon=1e-3, training=True)   # doctest: +SKIP

    Reference: Ioffe & Szegedy, "Batch Normalization", ICML 2015, Alg. 1.
    """
    import tensorflow as tf  # TensorFlow only on this backend's path (see the module docstring)

    fmt = _CHANNELS_LAST[len(x.shape)]
    if not training:
        y, *_ = tf.raw_ops.FusedBatchNormV3(x=x, scale=scale, offset=offset, mean=mean, variance=variance,
                                            epsilon=epsilon, data_format=fmt, is_training=False)
        return y, mean, variance
    empty = tf.constant([], tf.float32)
    y, batch_mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=scale, offset=offset, mean=empty, variance=empty, epsilon=epsilon, data_format=fmt,
        is_training=True)
    # The kernel multiplies the biased variance by n / (n - 1), and by 1 when n is 1.
    n = tf.cast(tf.size(x, out_type=tf.int64) // tf.cast(tf.shape(x)[-1], tf.int64), tf.float32)
    return y, batch_mean, unbiased * (tf.maximum(n - 1.0, 1.0) / tf.maximum(n, 1.0))


def conv3d_padded_filter_gradient(x, kernel, *, strides, dilations, pads):
    """A 'same' Conv3D whose weight gradient is computed on its input padded explicitly, 'valid'.

    Forward and input gradient are TensorFlow's 'same' kernels, unchanged.  Only the weight gradient
    differs: oneDNN's bfloat16 ``Conv3DBackpropFilter`` is wrong for 'same' convs whose input is
    shallower than the kernel, and right on the same input padded with zeros and run 'valid' (the same
    arithmetic; :mod:`kerasmer.core.precision` describes the bug).  Doing only that gradient this way
    is cheaper than padding the layer's input (which also makes the forward and input-gradient
    kernels work on the padded tensor): 111 ms against 142 ms for one forward and backward pass of a
    stage-4 resnet3d18 conv at batch 8 (8×2×7×7×512, 3×3×3×512×512; probe, median of 20).

    Args:
        x: channels-last 5-D activations.
        kernel: the (kt, kh, kw, in, out) kernel, same dtype as ``x``.
        strides, dilations: 3 ints each.
        pads: 3 ``(before, after)`` pairs, the zeros 'same' adds on T, H and W
            (:func:`kerasmer.layers.conv.same_padding`).

    Returns:
        The conv's output, as ``tf.nn.conv3d(x, kernel, ..., "SAME")``.

    Example:
        >>> y = conv3d_padded_filter_gradient(x, k, strides=(1, 1, 1), dilations=(1, 1, 1),
        ...                                   pads=((1, 1),) * 3)   # doctest: +SKIP
    """
    import tensorflow as tf  # TensorFlow only on this backend's path (see the module docstring)

    strides5, dilations5 = [1, *strides, 1], [1, *dilations, 1]
    paddings = [[0, 0], *[list(p) for p in pads], [0, 0]]

    @tf.custom_gradient
    def conv(inputs, weights):
        def grad(dy):
            dx = tf.raw_ops.Conv3DBackpropInputV2(input_sizes=tf.shape(inputs), filter=weights, out_backprop=dy,
                                                  strides=strides5, padding="SAME", dilations=dilations5)
            dk = tf.raw_ops.Conv3DBackpropFilterV2(input=tf.pad(inputs, paddings), filter_sizes=tf.shape(weights),
                                                   out_backprop=dy, strides=strides5, padding="VALID",
                                                   dilations=dilations5)
            return dx, dk

        return tf.nn.conv3d(inputs, weights, strides5, "SAME", dilations=dilations5), grad

    # A Keras variable is read here, outside the custom gradient (which would otherwise have to take
    # the variables it reads); the gradient reaches it through the read as through any op.
    return conv(tf.convert_to_tensor(x), tf.convert_to_tensor(kernel))
