"""Normalization layers written with keras.ops (backend-portable), and the batch norm every model trains with."""

from __future__ import annotations

import keras
from keras import ops

from kerasmer.core.kernels import fused_batch_norm, fused_batch_norm_supported


@keras.saving.register_keras_serializable(package="kerasmer")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' ``BatchNormalization`` computed by the backend's fused kernel where it has one.

    The same arguments, config, weights (``gamma``, ``beta``, ``moving_mean``, ``moving_variance``),
    moving-average rule and training/inference semantics as ``keras.layers.BatchNormalization``, of
    which it is a subclass (so :func:`kerasmer.models.fold_batch_norms` folds it).  Only the arithmetic
    differs: on the TensorFlow backend a channels-last 4-D or 5-D input is normalised by
    ``FusedBatchNormV3`` (:mod:`kerasmer.core.kernels`), in a few passes over the tensor, instead of
    Keras' separate casts and element-wise ops; the result differs by float rounding only.  Anything
    else (another backend or axis, a mask, renorm, synchronized statistics, no ``gamma`` or ``beta``,
    non-float32 variables) goes to Keras' own ``call``.

    Why: under ``mixed_bfloat16`` Keras' batch norms were about 11% of a resnet3d18 training step on
    2 CPU cores; fused, about 5% (see :mod:`kerasmer.core.kernels`).

    Example:
        >>> y = BatchNormalization(name="stem_bn")(keras.ops.ones((2, 4, 4, 3)))
        >>> tuple(y.shape)
        (2, 4, 4, 3)

    Reference: Ioffe & Szegedy, "Batch Normalization", ICML 2015.
    """

    def call(self, inputs, training=None, mask=None):
        if (mask is not None or self.renorm or self.synchronized or not (self.scale and self.center)
                or keras.backend.standardize_dtype(self.moving_mean.dtype) != "float32"
                or not fused_batch_norm_supported(inputs, self.axis)):
            return super().call(inputs, training=training, mask=mask)
        train = bool(training and self.trainable)
        y, mean, variance = fused_batch_norm(inputs, self.gamma, self.beta, self.moving_mean,
                                             self.moving_variance, epsilon=self.epsilon, training=train)
        if train:
            # Keras' rule (keras.layers.BatchNormalization.call), with the batch's biased variance.
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="kerasmer")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalization with a learnable affine.

    ``b_c = a_c / (k + alpha * sum_{c' in [c-r, c+r]} a_{c'}^2) ** beta`` as in
    AlexNet (Krizhevsky et al., 2012), followed by ``y = gamma * b + beta_shift``
    per channel, which makes the layer's parameter count 2·C (256 + 256 in
    LEARNet's Table I).  LEARNet's own eqs. (9)-(12) are batch normalisation
    (its default); this layer is its ``normalization="lrn"`` option.

    Args:
        depth_radius: half-width r of the channel window.
        bias: k.
        alpha: alpha (scaled per element of the window, as in TF's LRN).
        beta: exponent.
        scale: learn the per-channel gamma/shift affine (eq. 9).

    Example:
        >>> y = LocalResponseNormalization(name="lrn")(x)  # doctest: +SKIP

    Reference: Verma et al., "LEARNet: Dynamic Imaging Network for Micro
    Expression Recognition", IEEE TIP 2020, §III-B.
    """

    def __init__(self, depth_radius: int = 2, bias: float = 1.0, alpha: float = 1e-4, beta: float = 0.75,
                 scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.scale = bool(scale)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel axis of the input must be known, got {input_shape}")
        if self.scale:
            self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
            self.shift = self.add_weight(name="shift", shape=(channels,), initializer="zeros")

    def call(self, x):
        r = self.depth_radius
        sq = ops.square(x)
        # Sum of squares over a window of 2r+1 channels: pad the channel axis and
        # add shifted copies (no backend-specific LRN op needed).
        pad = [[0, 0]] * (len(x.shape) - 1) + [[r, r]]
        padded = ops.pad(sq, pad)
        channels = x.shape[-1]
        window = padded[..., 0:channels]
        for i in range(1, 2 * r + 1):
            window = window + padded[..., i:i + channels]
        y = x / ops.power(self.bias + self.alpha * window, self.beta)
        if self.scale:
            y = y * ops.cast(self.gamma, y.dtype) + ops.cast(self.shift, y.dtype)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta,
                      scale=self.scale)
        return config


@keras.saving.register_keras_serializable(package="kerasmer")
class ChannelAffine(keras.layers.Layer):
    """``y = x * scale + shift`` per channel (last axis): a batch norm frozen for inference.

    An inference-time batch normalisation is an affine map per channel,
    ``scale = gamma / sqrt(var + eps)`` and ``shift = beta - mean * scale``.
    Keras's ``BatchNormalization`` recomputes that from its four variables on
    every call, in float32 with casts around it under a mixed policy (LARNet:
    373 layers, about 746 casts and 6 element-wise ops each per call).  This
    layer holds the two folded vectors and does one multiply and one add in the
    layer's compute dtype.  It is made by
    :func:`kerasmer.models.fold_batch_norms`, never trained.

    Args:
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Example:
        >>> y = ChannelAffine(name="bn")(x)   # then bn.set_weights([scale, shift])  # doctest: +SKIP

    Reference: Ioffe & Szegedy, "Batch Normalization", ICML 2015, Alg. 2
    (the inference network's affine transform).
    """

    # Its weights are only cast to the compute dtype on every call: bfloat16_serving_model may store them so.
    serve_weights_in_compute_dtype = True

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel axis of the input must be known, got {input_shape}")
        self.scale = self.add_weight(name="scale", shape=(channels,), initializer="ones", trainable=False)
        self.shift = self.add_weight(name="shift", shape=(channels,), initializer="zeros", trainable=False)

    def call(self, x, mask=None):  # ``mask``: the batch norm it replaces took one; clone_model passes it
        return x * ops.cast(self.scale, x.dtype) + ops.cast(self.shift, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="kerasmer")
class FoldedBatchNorm(keras.layers.Layer):
    """The place of a batch norm folded into the conv or dense layer before it: passes its input through.

    Made by :func:`kerasmer.models.fold_batch_norms`, so that the folded model keeps
    every layer name (attention maps and Grad-CAM layers are looked up by name)
    and a summary shows where each batch norm went.  Adds no op to the graph.

    Example:
        >>> y = FoldedBatchNorm(name="stage1_bn")(x)   # y is x  # doctest: +SKIP
    """

    def call(self, x, mask=None):  # ``mask``: as ChannelAffine
        return x

    def compute_output_shape(self, input_shape):
        return input_shape
