"""Conv2D, Conv3D and Dense whose bias gradients are right in bfloat16: every biased layer of kerasmer's models.

Keras' TensorFlow backend turns a layer's ``ops.add(outputs, bias)`` into ``tf.nn.bias_add``, whose CPU
gradient in TF 2.21 (``BiasAddGrad``) sums bfloat16 values in bfloat16: the running sum stops growing once
the next value falls under half its last bit.  4,096 rows of values in [0, 1) sum to about 2,048 and come
out 256 (relative error 0.88); a 16×56×56×32 Conv2D's bias gradient is off by 0.99, a Dense over 4,096 rows
by 0.94 (``tests/layers/test_bias_gradient.py`` re-measures it).  ``precision="auto"`` trains in bfloat16 on
CPUs with AVX-512 BF16, so without this every biased layer of LEARNet, the residual attention networks,
MERANet's channel attention, the Micro-Attention embeddings, the shallow models and the token attention
would train its biases on saturated sums there.

The gradient of a broadcasting ``add(bias, outputs)`` is a ``reduce_sum``, which accumulates in float32 and
rounds once (relative error 0.001-0.003 up to 4M rows).  So these layers add their bias in that order when
they compute in bfloat16, and exactly as Keras does otherwise (float32 keeps the ``BiasAdd`` op and
Grappler's fusions).  Config, weights, names and outputs are Keras'; only the graph of the bf16 bias add
differs.

A graph that never takes gradients can keep ``BiasAdd``, which oneDNN fuses with the convolution before it:
LARNet's bf16 forward pass at batch 1 is 8% slower with the broadcasting add (probe, interleaved, 40 calls).
kerasmer's own inference graphs (the exported serving functions and :func:`kerasmer.inference.load_served_model`'s
call) are traced under :func:`inference_graph`, which restores Keras' order.  A plain ``model.predict`` keeps
the broadcasting add: right, a few per cent slower in bf16.

Example:
    >>> layer = Dense(8, dtype="mixed_bfloat16")
    >>> tuple(layer(keras.ops.ones((4, 3))).shape)
    (4, 8)
"""

from __future__ import annotations

import contextlib
import threading

import keras

from keras import ops


_STATE = threading.local()


@contextlib.contextmanager
def inference_graph():
    """Trace, inside this context, graphs that never take gradients: biases are added with Keras' ``BiasAdd``.

    Gradients taken through layers traced here are Keras' (wrong for biases in bfloat16 on TF 2.21's CPU), so
    only serving and prediction functions use it.  It acts when a layer is traced (or run eagerly), not when a
    traced function is called.

    Example:
        >>> @tf.function                                                       # doctest: +SKIP
        ... def serve(x):
        ...     with inference_graph():
        ...         return model(x, training=False)
    """
    previous = getattr(_STATE, "inference", False)
    _STATE.inference = True
    try:
        yield
    finally:
        _STATE.inference = previous


def add_bias(outputs, bias, *, channels_last: bool = True):
    """``outputs + bias`` over the channel axis, with a bias gradient that is right in bfloat16.

    Args:
        outputs: a layer's pre-activation output, rank 2 or more.
        bias: the 1-D bias, one value per channel.
        channels_last: whether the channel axis is the last (else axis 1).

    Returns:
        The sum, in ``outputs``' dtype.  In bfloat16 it is ``add(bias, outputs)``, which Keras' TensorFlow
        backend does not turn into ``tf.nn.bias_add`` (see the module docstring), except under
        :func:`inference_graph`; otherwise ``add(outputs, bias)``, as Keras' own layers do.

    Example:
        >>> tuple(add_bias(keras.ops.zeros((2, 5, 5, 3)), keras.ops.ones((3,))).shape)
        (2, 5, 5, 3)
    """
    rank = len(outputs.shape)
    shape = (1,) * (rank - 1) + (-1,) if channels_last else (1, -1) + (1,) * (rank - 2)
    bias = ops.reshape(bias, shape)
    if keras.backend.standardize_dtype(outputs.dtype) == "bfloat16" and not getattr(_STATE, "inference", False):
        return ops.add(bias, outputs)
    return ops.add(outputs, bias)


class _BiasedConv:
    """The ``call`` of Keras' ``BaseConv`` with the bias added by :func:`add_bias`."""

    def call(self, inputs):
        outputs = self.convolution_op(inputs, self.kernel)
        if self.use_bias:
            outputs = add_bias(outputs, self.bias, channels_last=self.data_format == "channels_last")
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package="kerasmer")
class Conv2D(_BiasedConv, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with a bias gradient that is right in bfloat16 (see the module docstring).

    Args:
        *args, **kwargs: as for ``keras.layers.Conv2D``.

    Example:
        >>> tuple(Conv2D(4, 3, padding="same")(keras.ops.ones((1, 5, 5, 2))).shape)
        (1, 5, 5, 4)
    """


@keras.saving.register_keras_serializable(package="kerasmer")
class Conv3D(_BiasedConv, keras.layers.Conv3D):
    """``keras.layers.Conv3D`` with a bias gradient that is right in bfloat16 (see the module docstring).

    Args:
        *args, **kwargs: as for ``keras.layers.Conv3D``.

    Example:
        >>> tuple(Conv3D(4, 3, padding="same")(keras.ops.ones((1, 2, 5, 5, 2))).shape)
        (1, 2, 5, 5, 4)
    """


@keras.saving.register_keras_serializable(package="kerasmer")
class Dense(keras.layers.Dense):
    """``keras.layers.Dense`` with a bias gradient that is right in bfloat16 (see the module docstring).

    Args:
        *args, **kwargs: as for ``keras.layers.Dense``.

    Example:
        >>> tuple(Dense(4)(keras.ops.ones((2, 3))).shape)
        (2, 4)
    """

    def call(self, inputs, training=None):
        x = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            x = add_bias(x, self.bias)
        return x if self.activation is None else self.activation(x)
