"""Layers of the Residual Attention Network's soft mask branch.

Two small, stateless, serializable layers used by
``kerasmer/models/residual_attention.py`` (Attention-56/92, EmoResNet, LARNet):

* :class:`AttentionActivation`: the mask branch's last activation, one of the
  three attention functions of LARNet eqs. (4)-(6) (Wang et al. 2017 §3.3).
* :class:`BilinearResize`: bilinear upsampling to a reference tensor's spatial
  size (or to a fixed size), so the encoder-decoder works for any input size,
  not only the 224x224 whose maps halve exactly.

References:
    F. Wang et al., "Residual Attention Network for Image Classification",
    CVPR 2017.  M. A. Hashmi et al., "LARNet: Real-Time Detection of Facial
    Micro Expression Using Lossless Attention Residual Network", Sensors 21(4)
    1098, 2021, §3.3, eqs. (4)-(6).
"""

from __future__ import annotations

import keras
from keras import ops

ATTENTION_ACTIVATIONS = ("mixed", "channel", "spatial")


@keras.saving.register_keras_serializable(package="kerasmer")
class AttentionActivation(keras.layers.Layer):
    """The attention activation at the end of the soft mask branch.

    * ``"mixed"``   (eq. 4): ``sigmoid(x)`` on every channel and position; mask in (0, 1).
    * ``"channel"`` (eq. 5): ``x / ||x_i||``, L2 normalisation across the channels
      at each spatial position ``i``; mask in [-1, 1].
    * ``"spatial"`` (eq. 6): ``sigmoid((x - mean_c) / std_c)``, each channel
      standardised over the spatial positions of its own map (per sample),
      then a sigmoid; mask in (0, 1).

    The statistics are computed in float32 and the result cast back, so the
    channel norm and the spatial variance neither overflow in float16 nor lose
    precision in bfloat16.

    Args:
        mode: one of ``"mixed"``, ``"channel"``, ``"spatial"``.
        epsilon: added under the square roots so an all-zero vector or a
            constant map gives a finite mask.
        **kwargs: standard layer arguments (``name``, ``dtype``).

    Example:
        >>> mask = AttentionActivation("spatial", name="att2_1_mask_activation")(x)  # doctest: +SKIP
    """

    def __init__(self, mode: str = "mixed", epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        if mode not in ATTENTION_ACTIVATIONS:
            raise ValueError(f"AttentionActivation: mode must be one of {ATTENTION_ACTIVATIONS}, got {mode!r}")
        if not epsilon > 0:
            raise ValueError(f"AttentionActivation: epsilon must be > 0, got {epsilon!r}")
        self.mode = mode
        self.epsilon = float(epsilon)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if self.mode == "mixed":
            y = ops.sigmoid(x)
        elif self.mode == "channel":
            y = x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + self.epsilon)
        else:
            mean = ops.mean(x, axis=(1, 2), keepdims=True)
            var = ops.var(x, axis=(1, 2), keepdims=True)
            y = ops.sigmoid((x - mean) / ops.sqrt(var + self.epsilon))
        return ops.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="kerasmer")
class BilinearResize(keras.layers.Layer):
    """Bilinear resize of a channels-last 4-D tensor.

    Called on ``[x, reference]`` (with ``size=None``) it resizes ``x`` to the
    static spatial size of ``reference``: the decoder of the soft mask branch
    upsamples to the size of the skip tensor it is added to, which also
    handles odd sizes (a 5x5 map pooled to 3x3 goes back to 5x5).  Called on a
    single tensor it resizes to the fixed ``size``.

    Args:
        size: ``(height, width)`` for the single-input form; ``None`` for the
            ``[x, reference]`` form.
        **kwargs: standard layer arguments.

    Returns:
        ``x`` resized, in the layer's compute dtype.

    Raises:
        ValueError: bad ``size``, wrong number of inputs, or a reference whose
            spatial size is not static.

    Example:
        >>> up = BilinearResize(name="att2_1_mask_up1_resize")([low, skip])  # doctest: +SKIP
        >>> y = BilinearResize(size=(32, 32), name="fusion_resize")(x)      # doctest: +SKIP
    """

    def __init__(self, size=None, **kwargs):
        super().__init__(**kwargs)
        if size is not None:
            size = tuple(int(s) for s in size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"BilinearResize: size must be (height, width) of positive ints, got {size!r}")
        self.size = size

    def _target_size(self, inputs):
        if self.size is not None:
            if isinstance(inputs, (list, tuple)):
                raise ValueError("BilinearResize: with a fixed size, call the layer on a single tensor")
            return inputs, self.size
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("BilinearResize: without size, call the layer on [x, reference]")
        x, reference = inputs
        size = tuple(reference.shape[1:3])
        if any(s is None for s in size):
            raise ValueError(f"BilinearResize: the reference's spatial size must be static, got {size}")
        return x, size

    def call(self, inputs):
        x, size = self._target_size(inputs)
        if tuple(x.shape[1:3]) == size:
            return ops.cast(x, self.compute_dtype)
        # The TF kernel computes bilinear resizes in float32; cast back so the
        # layer keeps the mixed-precision compute dtype.
        y = ops.image.resize(ops.cast(x, "float32"), size, interpolation="bilinear")
        return ops.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        if self.size is not None:
            return (input_shape[0],) + self.size + (input_shape[-1],)
        x_shape, ref_shape = input_shape
        return (x_shape[0],) + tuple(ref_shape[1:3]) + (x_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size})
        return config
