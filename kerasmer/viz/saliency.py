"""What a model looks at, as arrays: layer outputs (attention maps) and Grad-CAM, for 2D and 3D models.

These are the computations behind :mod:`kerasmer.viz.attention`'s pictures.  They take any functional
``keras.Model`` and a layer name; which layer holds a family's masks, or which one Grad-CAM reads by default,
the model side says (``kerasmer.models.attention_outputs``, ``kerasmer.models.cam_layer``), so viz imports no
model family.

Reference: R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017, §3, eqs. (1)-(2).

Example:
    >>> cam = grad_cam(model, clip, "stage4_block2_out")  # doctest: +SKIP
    >>> cam.map.shape, cam_time_profile(cam.map).shape    # doctest: +SKIP
    ((2, 4, 4), (2,))
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
# The gradient of a class score with respect to an inner feature map needs a tape; keras 3 runs on the
# TensorFlow backend here, and keras.ops has no backend-neutral gradient.
import tensorflow as tf

ACTIVATION_RANGES = {"mixed": (0.0, 1.0), "spatial": (0.0, 1.0), "channel": (-1.0, 1.0), None: (None, None)}


def _get_layer(model, name: str, who: str):
    try:
        return model.get_layer(name)
    except ValueError:
        names = [layer.name for layer in model.layers]
        raise ValueError(f"{who}: model {model.name!r} has no layer {name!r}; its layers end with "
                         f"{names[-8:]}") from None


def as_batch(model, x, who: str = "as_batch") -> np.ndarray:
    """One model input with a batch axis of 1, after checking it against ``model``'s input shape.

    Args:
        model: a single-input ``keras.Model``.
        x: one input, with or without the batch axis.
        who: the caller, for the message.

    Returns:
        float32 array ``(1, *input_shape)``.

    Raises:
        ValueError: a shape that does not fit the model's input.

    Example:
        >>> as_batch(model, np.zeros((32, 32, 3))).shape  # doctest: +SKIP
        (1, 32, 32, 3)
    """
    x = np.asarray(x, np.float32)
    given = x.shape
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim == len(expected):
        x = x[None]
    fits = x.ndim == len(expected) + 1 and x.shape[0] == 1 and all(
        e is None or e == s for e, s in zip(expected, x.shape[1:]))
    if not fits:
        raise ValueError(f"{who}: the input has shape {given}, but model {model.name!r} takes one sample of "
                         f"shape {expected} (with or without a batch axis of 1)")
    return x


def layer_outputs(model, x, layer_names) -> dict:
    """The outputs of the named layers for one input, as numpy arrays without the batch axis.

    Args:
        model: a functional ``keras.Model``.
        x: one input sample (with or without a batch axis of 1).
        layer_names: the layers to read, e.g. a residual attention network's ``*_mask_activation`` layers.

    Returns:
        ``{layer name: array}``, in the order given.

    Raises:
        ValueError: an unknown layer (named) or an input of the wrong shape.

    Example:
        >>> maps = layer_outputs(model, image, ["att2_1_mask_activation"])  # doctest: +SKIP
    """
    layer_names = list(layer_names)
    layers = [_get_layer(model, n, "layer_outputs") for n in layer_names]
    probe = keras.Model(model.inputs[0], [layer.output for layer in layers])
    values = probe(as_batch(model, x, "layer_outputs"), training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    return {n: np.asarray(keras.ops.convert_to_numpy(v), np.float32)[0] for n, v in zip(layer_names, values)}


@dataclasses.dataclass
class GradCam:
    """A Grad-CAM for one input.

    Attributes:
        map: the class activation map at the layer's resolution, ``(H, W)`` or ``(T, H, W)``, >= 0 (not rescaled).
        weights: the channel weights alpha_k (eq. 1), ``(C,)``.
        class_index: the explained class.
        probabilities: the model's output for the input.
        layer: the layer read.
        score: ``"logit"`` (the class score before the softmax, as the paper asks) or ``"output"``.
    """

    map: np.ndarray
    weights: np.ndarray
    class_index: int
    probabilities: np.ndarray
    layer: str
    score: str


def _head(model):
    """The layer producing the model's first output."""
    out = model.outputs[0]
    for layer in reversed(model.layers):
        if layer.output is out:
            return layer
    return model.layers[-1]


def grad_cam(model, x, layer_name: str, *, class_index: int | None = None) -> GradCam:
    """Grad-CAM of one input at a 4-D (2D model) or 5-D (3D model) layer.

    alpha_k = the mean over the map's positions (and time steps) of d y_c / d A_k (eq. 1); the map is
    ReLU(sum_k alpha_k A_k) (eq. 2).  y_c is the class score before the softmax when the head is a softmax
    ``Dense`` (every kerasmer model's ``predictions``), otherwise the model's output for class c.

    Args:
        model: a functional ``keras.Model`` (its first output is explained).
        x: one input sample, with or without a batch axis of 1.
        layer_name: the layer whose output A is read; ``kerasmer.models.cam_layer(model)`` is the model spec's
            default.
        class_index: the class to explain; default the predicted one.

    Returns:
        A :class:`GradCam`.

    Raises:
        ValueError: unknown layer, a layer whose output is not 4-D or 5-D, a bad input or class index.

    Example:
        >>> cam = grad_cam(model, image, "post_relu")                  # doctest: +SKIP
        >>> fig = plot_grad_cam(image, cam.map, path="gradcam.png")   # doctest: +SKIP
    """
    layer = _get_layer(model, layer_name, "grad_cam")
    if len(layer.output.shape) not in (4, 5):
        raise ValueError(f"grad_cam: layer {layer_name!r} has output shape {tuple(layer.output.shape)}; Grad-CAM "
                         "needs a (batch, H, W, C) or (batch, T, H, W, C) feature map")
    head = _head(model)
    use_logits = isinstance(head, keras.layers.Dense) and head.activation is keras.activations.softmax
    probe = keras.Model(model.inputs[0], [layer.output, head.input if use_logits else model.outputs[0],
                                       model.outputs[0]])
    batch = as_batch(model, x, "grad_cam")
    with tf.GradientTape() as tape:
        features, pre, probs = probe(batch, training=False)
        scores = (keras.ops.matmul(keras.ops.cast(pre, "float32"), head.kernel) + head.bias) if use_logits else pre
        probs = np.asarray(keras.ops.convert_to_numpy(probs), np.float32)[0]
        c = int(np.argmax(probs)) if class_index is None else int(class_index)
        if not 0 <= c < probs.shape[-1]:
            raise ValueError(f"grad_cam: class_index {class_index} is not in [0, {probs.shape[-1]})")
        target = keras.ops.cast(scores, "float32")[0, c]
    grads = np.asarray(tape.gradient(target, features), np.float32)[0]
    a = np.asarray(keras.ops.convert_to_numpy(features), np.float32)[0]
    weights = grads.reshape(-1, grads.shape[-1]).mean(axis=0)
    cam = np.maximum(np.tensordot(a, weights, axes=([-1], [0])), 0.0)
    return GradCam(cam.astype(np.float32), weights, c, probs, layer_name, "logit" if use_logits else "output")


def cam_time_profile(cam: np.ndarray) -> np.ndarray:
    """A 3D Grad-CAM's time profile: the mean of the map over each time step's positions.

    Args:
        cam: ``(T, H, W)`` map.

    Returns:
        ``(T,)`` float32.

    Example:
        >>> cam_time_profile(np.ones((2, 3, 3))).tolist()
        [1.0, 1.0]
    """
    cam = np.asarray(cam, np.float32)
    if cam.ndim != 3:
        raise ValueError(f"cam_time_profile: expected a (T, H, W) map, got shape {cam.shape}")
    return cam.mean(axis=(1, 2))


def mask_map(mask, activation: str | None = "mixed") -> np.ndarray:
    """One 2-D (or, for a clip, 3-D) map from an attention mask, averaged over its channels.

    Args:
        mask: ``(H, W, C)`` soft mask (residual attention family; C channels), ``(H, W, 1)`` map
            (Micro-Attention), ``(T, H, W, 1)`` (MERANet's spatio-temporal map) or already ``(H, W)``.
        activation: the mask's activation, which fixes its range: ``"mixed"``/``"spatial"`` (0, 1),
            ``"channel"`` [-1, 1] (LARNet eqs. 4-6); ``None``: unbounded (Micro-Attention).

    Returns:
        float32 map without the channel axis.

    Example:
        >>> mask_map(np.full((4, 4, 8), 0.5)).mean()
        np.float32(0.5)
    """
    if activation not in ACTIVATION_RANGES:
        raise ValueError(f"mask_map: activation must be one of {list(ACTIVATION_RANGES)}, got {activation!r}")
    m = np.asarray(mask, np.float32)
    if m.ndim in (3, 4):
        m = m.mean(axis=-1)
    if m.ndim not in (2, 3):
        raise ValueError(f"mask_map: expected an (H, W[, C]) or (T, H, W, C) mask, got shape {m.shape}")
    return m


__all__ = ["ACTIVATION_RANGES", "GradCam", "as_batch", "cam_time_profile", "grad_cam", "layer_outputs",
           "mask_map"]
