"""Every Conv3D of kerasmer's models, made by one helper that keeps oneDNN's bf16 weight-gradient bug away.

Under a bfloat16 policy, a 'same' Conv3D whose input is shallower than its kernel gets wrong weight
gradients from oneDNN (TF 2.21 / oneDNN 3.7.3; :mod:`kerasmer.core.precision` says where, and
``tests/layers/test_bf16_guard.py`` re-measures it).  The weight gradient of the same conv on its
input padded with zeros explicitly and run 'valid' is right.  So :func:`conv3d` makes such a layer a
:class:`GuardedConv3D`: a ``Conv3D`` in bfloat16 whose forward pass and input gradient are the usual
'same' kernels and whose weight gradient is taken on the padded input
(:func:`kerasmer.core.kernels.conv3d_padded_filter_gradient`).  Same outputs, weights and layer names.

Until issue 16 such layers computed in float32 instead: resnet3d18's three stage-4 convs at 16
frames.  Probes (batch 8, 16×112×112×3, mixed_bfloat16, interleaved, median of 3 steps):
5.30 s per step with them in float32, 5.10 s as :class:`GuardedConv3D`, 5.01 s with no guard at all
(wrong gradients); padding the layer's input instead (a padding layer and a 'valid' conv, which makes
the forward and input-gradient kernels work on the larger tensor) gave 5.16 s against 5.25 s.

Example:
    >>> y = conv3d(x, 512, 3, policy="mixed_bfloat16", name="stage4_block2_1_conv")   # doctest: +SKIP
"""

from __future__ import annotations

import keras

from keras import ops

from kerasmer.core.kernels import conv3d_padded_filter_gradient
from kerasmer.layers.biased import Conv3D
from kerasmer.core.precision import as_policy, needs_conv3d_guard


def _triple(value) -> tuple:
    return (int(value),) * 3 if isinstance(value, int) else tuple(int(v) for v in value)


def same_padding(size: int | None, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int] | None:
    """The zeros TensorFlow's 'same' padding adds before and after one axis.

    Args:
        size: the axis' length, or None if unknown.
        kernel, stride, dilation: the conv's along that axis.

    Returns:
        ``(before, after)``; None when ``size`` is unknown and the stride makes the padding depend on it.

    Example:
        >>> same_padding(2, 3), same_padding(8, 3, stride=2), same_padding(None, 5)
        ((1, 1), (0, 1), (2, 2))
    """
    span = (kernel - 1) * dilation + 1
    if stride == 1:
        total = span - 1
    elif size is None:
        return None
    else:
        total = max((-(-size // stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package="kerasmer")
class GuardedConv3D(Conv3D):
    """A channels-last 'same' ``Conv3D`` whose weight gradient is taken on its explicitly padded input.

    The arguments, config, weights and outputs of ``keras.layers.Conv3D``; made by :func:`conv3d`
    for the layers oneDNN's bf16 weight gradient gets wrong (see the module docstring).  On the
    TensorFlow backend only the weight gradient changes; on another backend the layer pads and runs
    'valid' through ``keras.ops``, the same arithmetic.

    Args:
        *args, **kwargs: as for ``keras.layers.Conv3D``; ``padding`` must be ``"same"`` and
            ``data_format`` channels-last.

    Example:
        >>> layer = GuardedConv3D(8, 3, padding="same", dtype="mixed_bfloat16")
        >>> tuple(layer(keras.ops.ones((1, 2, 5, 5, 4))).shape)
        (1, 2, 5, 5, 8)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != "same" or self.data_format != "channels_last":
            raise ValueError(f"{self.name}: GuardedConv3D takes padding='same' and channels_last only, got "
                             f"padding={self.padding!r}, data_format={self.data_format!r}")

    def convolution_op(self, inputs, kernel):
        axes = zip(inputs.shape[1:4], self.kernel_size, self.strides, self.dilation_rate)
        pads = [same_padding(*a) for a in axes]
        if None in pads:
            raise ValueError(f"{self.name}: input {tuple(inputs.shape)} has an unknown strided axis; "
                             "the explicit padding needs its size")
        if keras.backend.backend() == "tensorflow":
            return conv3d_padded_filter_gradient(inputs, kernel, strides=self.strides, dilations=self.dilation_rate,
                                                 pads=pads)
        padded = ops.pad(inputs, ((0, 0), *pads, (0, 0)))
        return ops.conv(padded, kernel, strides=self.strides, padding="valid", dilation_rate=self.dilation_rate)


def conv3d(x, filters, kernel_size, *, policy, strides=1, padding="same", name=None, **kwargs):
    """Apply a ``keras.layers.Conv3D`` to ``x`` under ``policy``, guarded against the bf16 bug.

    Args:
        x: a channels-last 5-D tensor (batch, T, H, W, C).
        filters, kernel_size, strides, padding: as for ``keras.layers.Conv3D``.
        policy: the model's dtype policy (a ``keras.DTypePolicy`` or a name); the layer gets it.
        name: the conv layer's name.
        **kwargs: passed to ``keras.layers.Conv3D``; an explicit ``dtype`` is the caller's choice and
            is kept as is, unguarded.

    Returns:
        The conv's output tensor.  Where :func:`~kerasmer.core.precision.needs_conv3d_guard` holds
        (a bfloat16 policy, input depth below the kernel depth) the layer is a :class:`GuardedConv3D`;
        if its padding cannot be known from static shapes (or ``padding`` is not 'same', or the data
        is channels-first) the layer computes in float32 instead.

    Example:
        >>> y = conv3d(keras.Input((2, 7, 7, 8)), 8, 3, policy="mixed_bfloat16", name="c")
        >>> tuple(y.shape), y.dtype
        ((None, 2, 7, 7, 8), 'bfloat16')
    """
    policy = as_policy(policy)
    kernel, stride = _triple(kernel_size), _triple(strides)
    layer_kwargs = dict(strides=strides, name=name, **kwargs)
    if "dtype" in kwargs or not needs_conv3d_guard(x.shape[1], kernel[0], policy):
        layer_kwargs.setdefault("dtype", policy)
        return Conv3D(filters, kernel, padding=padding, **layer_kwargs)(x)
    dilation = _triple(kwargs.get("dilation_rate", 1))
    pads = [same_padding(*args) for args in zip(x.shape[1:4], kernel, stride, dilation)]
    if padding != "same" or None in pads or kwargs.get("data_format", "channels_last") != "channels_last":
        return Conv3D(filters, kernel, padding=padding, dtype="float32", **layer_kwargs)(x)
    return GuardedConv3D(filters, kernel, padding="same", dtype=policy, **layer_kwargs)(x)
