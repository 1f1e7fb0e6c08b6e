"""Channel and spatio-temporal attention for 3-D (clip) feature volumes.

The two attentions of MERANet's residual attention block (Gajjala et al.,
"MERANet: Facial Micro-Expression Recognition using 3D Residual Attention
Network", ICVGIP 2021, §3.1–3.2), built from ordinary Keras layers so that
every Conv3D is a top-level layer of the functional model, created through
:func:`kerasmer.core.precision.conv3d` (the bfloat16 guard), and visible by name to
saliency tools.  Only the two weight-free reductions that Keras lacks are
custom layers here.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasmer.layers.biased import Dense
from kerasmer.layers.conv import conv3d

CHANNEL_ATTENTION_KINDS = ("conv", "mlp")


@keras.saving.register_keras_serializable(package="kerasmer")
class ChannelPool(keras.layers.Layer):
    """Average and max over the channel axis, concatenated as two channels.

    The spatio-temporal descriptor of eq. (1), (2) and (4): for an input of
    shape ``(batch, ..., C)`` the output is ``(batch, ..., 2)`` holding the
    channel mean (index 0) and the channel max (index 1).

    Example:
        >>> ChannelPool()(keras.ops.ones((1, 4, 7, 7, 64))).shape  # doctest: +SKIP
        (1, 4, 7, 7, 2)
    """

    def call(self, inputs):
        avg = ops.mean(inputs, axis=-1, keepdims=True)
        mx = ops.max(inputs, axis=-1, keepdims=True)
        return ops.concatenate([avg, mx], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2,)


@keras.saving.register_keras_serializable(package="kerasmer")
class ReduceSum(keras.layers.Layer):
    """Sum over one axis (weight-free), e.g. to add stacked attention descriptors.

    Args:
        axis: the axis to sum over (not the batch axis).
        keepdims: keep the summed axis with length 1.

    Example:
        >>> ReduceSum(axis=1)(keras.ops.ones((2, 2, 1, 1, 8))).shape  # doctest: +SKIP
        (2, 1, 1, 1, 8)
    """

    def __init__(self, axis=1, keepdims=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, int) or axis == 0:
            raise ValueError(f"ReduceSum: axis must be a non-batch integer axis, got {axis!r}")
        self.axis = axis
        self.keepdims = bool(keepdims)

    def call(self, inputs):
        return ops.sum(inputs, axis=self.axis, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        axis = self.axis % len(shape)
        if self.keepdims:
            shape[axis] = 1
        else:
            del shape[axis]
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "keepdims": self.keepdims})
        return config


def channel_attention_3d(x, *, policy, reduction=16, shared="conv", name="ca"):
    """Channel attention of eq. (6)–(9): rescale each channel by a learnt weight.

    Global average- and max-pooled descriptors (each ``C×1×1×1``) go through
    one shared bottleneck (``C → C/r``, ReLU, ``C/r → C``); the two outputs
    are summed and squashed by a sigmoid, and ``x`` is multiplied by the map.
    The descriptors are stacked along the temporal axis so that a single
    1×1×1 Conv3D pair (weights shared by construction) serves both of them.

    Args:
        x: feature volume ``(batch, T, H, W, C)``.
        policy: the model's dtype policy (a ``keras.DTypePolicy`` or a name),
            passed to the convs (:func:`conv3d`, the bf16 guard).
        reduction: the channel reduction ratio ``r`` (paper: 16).
        shared: ``"conv"`` for the shared 1×1×1 convolutions (CN-SCNN, the
            paper's choice) or ``"mlp"`` for a shared two-layer perceptron
            (CN-SMLP, §5.2).  On 1×1×1 descriptors the two compute the same
            family of functions with the same parameter count; ``"mlp"``
            uses Dense layers, as a CBAM-style MLP does.
        name: prefix for the layer names.

    Returns:
        The re-calibrated volume, same shape as ``x``.

    Example:
        >>> y = channel_attention_3d(x, policy=policy, reduction=16, name="stage1_block1_ca")  # doctest: +SKIP
    """
    if shared not in CHANNEL_ATTENTION_KINDS:
        raise ValueError(f"channel_attention must be one of {CHANNEL_ATTENTION_KINDS}, got {shared!r}")
    channels = int(x.shape[-1])
    if not isinstance(reduction, int) or isinstance(reduction, bool) or not 1 <= reduction <= channels:
        raise ValueError(f"reduction must be an integer in [1, {channels}] (the channel count), got {reduction!r}")
    hidden = channels // reduction
    avg = keras.layers.GlobalAveragePooling3D(keepdims=True, name=f"{name}_avgpool")(x)
    mx = keras.layers.GlobalMaxPooling3D(keepdims=True, name=f"{name}_maxpool")(x)
    # (batch, 2, 1, 1, C): avg at t=0, max at t=1.
    d = keras.layers.Concatenate(axis=1, name=f"{name}_descriptors")([avg, mx])
    init = dict(kernel_initializer="glorot_uniform", bias_initializer="zeros")
    if shared == "conv":
        d = conv3d(d, hidden, 1, policy=policy, padding="valid", activation="relu", name=f"{name}_reduce", **init)
        d = conv3d(d, channels, 1, policy=policy, padding="valid", name=f"{name}_expand", **init)
    else:
        d = Dense(hidden, activation="relu", name=f"{name}_fc1", **init)(d)
        d = Dense(channels, name=f"{name}_fc2", **init)(d)
    d = ReduceSum(axis=1, name=f"{name}_sum")(d)  # eq. (8): W_e(.)(avg) + W_e(.)(max)
    a = keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(d)
    return keras.layers.Multiply(name=f"{name}_scale")([x, a])


def spatiotemporal_attention_3d(x, *, policy, kernel_size=5, name="st"):
    """Spatio-temporal attention of eq. (1)–(5): rescale every (t, h, w) location.

    The channel mean and max are concatenated (``2×T×H×W``), convolved by one
    Conv3D with a single output channel and 'same' padding, squashed by a
    sigmoid, and ``x`` is multiplied by the map (broadcast over channels).

    Args:
        x: feature volume ``(batch, T, H, W, C)``.
        policy: the model's dtype policy (a ``keras.DTypePolicy`` or a name),
            passed to the conv (:func:`conv3d`, the bf16 guard).
        kernel_size: the attention conv's kernel, an int or a (t, h, w) tuple
            (paper: 5; §5.3 compares 3, 5 and 7).
        name: prefix for the layer names; the attention map is the output of
            ``f"{name}_conv"``.

    Returns:
        The re-calibrated volume, same shape as ``x``.

    Example:
        >>> y = spatiotemporal_attention_3d(x, policy=policy, kernel_size=5, name="stage1_block1_st")  # doctest: +SKIP
    """
    d = ChannelPool(name=f"{name}_pool")(x)
    a = conv3d(
        d, 1, kernel_size, policy=policy, padding="same", activation="sigmoid", name=f"{name}_conv",
        kernel_initializer="glorot_uniform", bias_initializer="zeros",
    )
    return keras.layers.Multiply(name=f"{name}_scale")([x, a])
