"""The weight-free parts of the micro-attention unit (Wang et al., 2018).

In a residual attention block the unit concatenates the block's three conv
outputs, embeds them with a 1×1 conv (an ordinary, named ``Conv2D`` in the
model, so weight transfer and per-layer tests see it), averages the embedding
over channels into one spatial map M(X) (eq. 1, :class:`ChannelMean`) and
modulates the residual output, O(X) = T(X)·(1 + M(X)) (eq. 2,
:class:`MicroAttentionGate`).

Reference: C. Wang, M. Peng, T. Bi, T. Chen, "Micro-Attention for
Micro-Expression Recognition", Neurocomputing, 2020, §3.2.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasmer")
class ChannelMean(keras.layers.Layer):
    """Average over the channel (last) axis, keeping it: (B, H, W, C) -> (B, H, W, 1).

    This is eq. (1)'s ``1/c' Σ`` over the embedded channels: one spatial
    attention map per block, broadcast over the residual output's channels.

    Example:
        >>> m = ChannelMean()(keras.ops.ones((2, 7, 7, 32)))  # doctest: +SKIP
        >>> m.shape                                           # doctest: +SKIP
        (2, 7, 7, 1)
    """

    def call(self, x):
        return ops.mean(x, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)


@keras.saving.register_keras_serializable(package="kerasmer")
class MicroAttentionGate(keras.layers.Layer):
    """O(X) = T(X) · (1 + M(X)), eq. (2) of the micro-attention paper.

    The ``1 +`` keeps the plain residual output when the map is near zero
    ("M(X) would approximately approach zero when the attentional areas are not
    obviously learned"), which is also why M has no sigmoid: a sigmoid could
    not approach zero without saturating.

    Call arguments:
        inputs: a pair ``[t, m]``: the residual output (B, H, W, C) and the
            attention map (B, H, W, 1).

    Returns:
        The modulated residual output, (B, H, W, C).

    Example:
        >>> o = MicroAttentionGate()([t, m])  # doctest: +SKIP
    """

    def call(self, inputs):
        t, m = inputs
        return t * (1.0 + ops.cast(m, t.dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
