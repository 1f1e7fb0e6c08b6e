"""Zero padding before a strided Conv3D that keeps TensorFlow's graph optimiser working.

Why this layer exists.  A strided 3D conv padded symmetrically, as PyTorch and
MERANet's Table 2 pad it, is written ``ZeroPadding3D(k // 2)`` + a ``"valid"``
Conv3D: Keras' ``"same"`` pads ``(k - s) // 2`` before and the rest after an
even-sized input, which moves the stride-2 sampling grid by one voxel
(``tests/models/test_padding.py`` shows it).  ``ZeroPadding3D`` emits a ``Pad``
op, and with oneDNN TensorFlow's Grappler *remapper* rewrites ``Pad -> Conv3D``
into one ``_FusedConv3D``, deleting the ``Pad``.  In a training graph the
``Pad`` output also feeds the conv's gradient (``ShapeN`` and
``Conv3DBackpropFilterV2``), so the rewrite leaves dangling edges and the
whole remapper pass is rolled back::

    meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply
    error: fanout '.../stage2_block1_1_conv_1/convolution/ShapeN' exist for
    missing node '.../stage2_block1_1_pad_1/Pad'

(TF 2.21, float32 and mixed_bfloat16 alike): every other fusion of the
training step (batch norm, activations, bias adds) is dropped with it.

:class:`UnfusedZeroPadding3D` pads the same zeros through ``PadV2`` (a ``Pad``
whose fill value is a tensor), which the ``Pad + Conv3D`` pattern does not
match: same values, same shapes, no weights, one op, and the remapper runs.

Example:
    >>> x = UnfusedZeroPadding3D((1, 3, 3), name="stem_pad")(clip)   # doctest: +SKIP
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasmer")
class UnfusedZeroPadding3D(keras.layers.ZeroPadding3D):
    """``keras.layers.ZeroPadding3D`` that Grappler's ``Pad + Conv3D`` fusion leaves alone.

    Same arguments, config, output shape and values as ``ZeroPadding3D``; only
    the op differs (``PadV2`` with a zero-tensor fill instead of ``Pad``), so
    the remapper's ``PadWithConv3D`` rewrite, which breaks training graphs,
    does not fire.  See the module docstring for the failure it avoids.

    Args:
        padding: int, or a tuple of 3 ints, or 3 ``(before, after)`` pairs: as
            for ``keras.layers.ZeroPadding3D``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: base layer arguments (``name``, ``dtype``).

    Returns:
        Called on a 5-D tensor, the tensor padded with zeros on the three
        spatial axes.

    Example:
        >>> y = UnfusedZeroPadding3D(1)(keras.ops.ones((1, 2, 2, 2, 1)))
        >>> tuple(y.shape)
        (1, 4, 4, 4, 1)
    """

    def call(self, inputs):
        if self.data_format == "channels_first":
            widths = ((0, 0), (0, 0), *self.padding)
        else:
            widths = ((0, 0), *self.padding, (0, 0))
        # A tensor fill value (rather than the Python 0 ZeroPadding3D uses)
        # makes tf.pad emit PadV2, which the remapper's Pad+Conv3D rewrite
        # does not match; the values are identical.
        zero = ops.zeros((), dtype=inputs.dtype)
        return ops.pad(inputs, widths, constant_values=zero)
