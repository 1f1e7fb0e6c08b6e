"""The inference graph of a model: its batch norms folded into the convolutions before them.

At inference a batch normalisation is a fixed affine map per channel, so:

* a BN whose input is a convolution (or dense layer) without activation, read by nothing else, is folded
  into that layer: ``kernel * scale`` and ``bias * scale + shift``, and the BN becomes a
  :class:`kerasmer.layers.FoldedBatchNorm` (a pass-through that keeps its name);
* any other BN (after a residual add, as in pre-activation units) becomes a
  :class:`kerasmer.layers.ChannelAffine` holding ``scale`` and ``shift``: one multiply and one add instead of
  Keras's six element-wise ops and, under a mixed policy, two casts.

LARNet has 373 batch norms (1,492 of its 2,026 variables); its export, load and per-frame latency are
dominated by them (docs/benchmarks.md, issue 16).  The folded model is for inference only: its outputs equal
the original's in inference mode up to float rounding (``tests/models/test_folding.py``), but it cannot be
trained like the original (no batch statistics).  Layer names are kept, so attention maps and Grad-CAM
layers (:func:`kerasmer.cam_layer`) are found by the same names.
"""

from __future__ import annotations

import keras
import numpy as np

from kerasmer.layers.normalization import ChannelAffine, FoldedBatchNorm

# Layers whose output channels are the last axis of the kernel and of the output: a following per-channel
# affine folds into them exactly.
_FOLDABLE = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """``model`` with every inference-mode batch norm folded away (see the module docstring).

    Args:
        model: a built functional ``keras.Model``.

    Returns:
        A new model with the same name, inputs, outputs and layer names, or ``model`` itself when it has no
        ``BatchNormalization`` over the last axis.  ``folded.folding`` (a dict) says what was done:
        ``{"folded": [bn names], "affine": [bn names]}``.

    Raises:
        ValueError: ``model`` is not a functional ``keras.Model``.

    Example:
        >>> served = fold_batch_norms(kerasmer.build_model("larnet"))              # doctest: +SKIP
        >>> len(served.folding["folded"]), len(served.folding["affine"])          # doctest: +SKIP
        (244, 129)

    Reference: Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
    Only Inference", CVPR 2018, §3.2 (batch-norm folding).
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "operations") or not model.inputs:
        raise ValueError(f"fold_batch_norms: expected a built functional keras.Model, got {type(model).__name__}")
    plan = _plan(model)
    if not plan:
        return model
    into = {conv: bn for bn, conv in plan.items() if conv is not None}

    def clone(layer):
        if layer.name in plan:
            if plan[layer.name] is not None:
                return FoldedBatchNorm(name=layer.name, dtype=layer.dtype_policy.name)
            return ChannelAffine(name=layer.name, dtype=layer.dtype_policy.name)
        config = layer.get_config()
        if layer.name in into and not config.get("use_bias", True):
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    # New inputs with the original inputs' names: the exported signature's input name comes from them.
    inputs = [keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name)
              for x in model.inputs]
    folded = keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                                      clone_function=clone)
    _copy_weights(model, folded, plan, into)
    folded.folding = {"folded": sorted(b for b, c in plan.items() if c is not None),
                      "affine": sorted(b for b, c in plan.items() if c is None)}
    return folded


def _is_last_axis_bn(layer) -> bool:
    if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
        return False
    rank = len(layer.input.shape)
    return layer.axis in (-1, rank - 1)


def _plan(model: keras.Model) -> dict:
    """BN name -> the name of the layer it folds into, or None where it becomes a ``ChannelAffine``."""
    consumers = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for parent in node.parent_nodes:
                consumers.setdefault(parent.operation.name, []).append(layer.name)
    plan = {}
    for layer in model.layers:
        if not _is_last_axis_bn(layer):
            continue
        parents = layer._inbound_nodes[0].parent_nodes
        source = parents[0].operation if len(parents) == 1 else None
        foldable = (isinstance(source, _FOLDABLE) and len(source._inbound_nodes) == 1
                    and consumers.get(source.name) == [layer.name]
                    and source.get_config().get("activation") in (None, "linear"))
        plan[layer.name] = source.name if foldable else None
    return plan


def _affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """The BN's inference map as float64 ``(scale, shift)``."""
    mean = np.asarray(bn.moving_mean, np.float64)
    var = np.asarray(bn.moving_variance, np.float64)
    gamma = np.asarray(bn.gamma, np.float64) if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta, np.float64) if bn.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale, beta - mean * scale


def _copy_weights(model, folded, plan, into) -> None:
    for new in folded.layers:
        if not new.weights:
            continue
        old = model.get_layer(new.name)
        if new.name in plan:
            if plan[new.name] is None:
                new.set_weights([w.astype(np.float32) for w in _affine(old)])
        elif new.name in into:
            scale, shift = _affine(model.get_layer(into[new.name]))
            kernel = np.asarray(old.kernel, np.float64)
            bias = np.asarray(old.bias, np.float64) if old.use_bias else 0.0
            new.set_weights([(kernel * scale).astype(np.float32), (bias * scale + shift).astype(np.float32)])
        else:
            new.set_weights(old.get_weights())
