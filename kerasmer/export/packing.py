"""An export's weights packed into one flat variable per dtype, sliced back in the graph (issue 16).

A SavedModel with one variable per weight pays for each at load time: TensorFlow creates each variable,
restores each from the checkpoint, and imports save and restore functions, and a wrapper per signature,
whose size grows with the variable count. LARNet's 1,024 weights made those about 60% of its
``saved_model.pb`` and most of its load time. Packed, the export holds one variable per dtype
(``weights_float32``, ``weights_bfloat16``, ...); the serving function reads it once and cuts each weight out
with ``Slice`` + ``Reshape``. Every weight starts on a 64-byte boundary (:data:`ALIGN_BYTES`), where
TensorFlow's CPU ``Slice`` of a 1-D tensor returns a view of its input instead of a copy, so a call costs
what it did (measured: LARNet's 1,024 slices take about 1 ms of op time in a 155 ms call).

The model runs through ``keras.Model.stateless_call`` with the sliced values, so the graph is the model's own
graph with each variable read replaced by its slice. ``assets.extra/weights.json`` (:func:`weights_layout`)
records each weight's name, dtype, offset and shape; :func:`unpack_weights` returns the named arrays.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

ALIGN_BYTES = 64  # Eigen's largest alignment (AVX-512): a 1-D Slice starting on it shares its input's buffer
LAYOUT_FILE = "weights.json"


def _dtype_name(variable) -> str:
    return tf.as_dtype(variable.dtype).name


def _call_order(model) -> list:
    """The variables ``stateless_call`` takes, in its order (trainable, then non-trainable)."""
    return list(model.trainable_variables) + list(model.non_trainable_variables)


def _is_weight(model):
    # Keras counts a dropout's seed-generator state among the variables but not the weights: it is not packed
    # (inference never draws from it) and the serving graph gets its value as a constant.
    ids = {id(w) for w in model.weights}
    return lambda variable: id(variable) in ids


def pack_weights(model) -> tuple[dict, list[dict]]:
    """Each dtype's weights of ``model`` concatenated, each starting on an :data:`ALIGN_BYTES` boundary.

    Args:
        model: a built Keras model.

    Returns:
        ``(buffers, layout)``: dtype name -> flat ``numpy`` array, and one entry per weight, in the order
        ``model.trainable_variables + model.non_trainable_variables`` (what ``stateless_call`` takes; the
        seed-generator states among them are not weights and are left out):
        ``{"name", "dtype", "offset", "shape"}``, the offset counted in elements of its buffer.

    Example:
        >>> buffers, layout = pack_weights(model)  # doctest: +SKIP
        >>> layout[0]["name"], layout[0]["offset"]  # doctest: +SKIP
        ('conv1/kernel', 0)
    """
    chunks, layout, is_weight = {}, [], _is_weight(model)
    for variable in filter(is_weight, _call_order(model)):
        dtype = _dtype_name(variable)
        values = np.asarray(variable.numpy()).reshape(-1)
        parts = chunks.setdefault(dtype, [])
        offset = sum(part.size for part in parts)
        step = max(1, ALIGN_BYTES // values.dtype.itemsize)
        pad = (-values.size) % step
        parts.append(np.concatenate([values, np.zeros(pad, values.dtype)]) if pad else values)
        layout.append({"name": variable.path, "dtype": dtype, "offset": int(offset),
                       "shape": [int(d) for d in variable.shape]})
    buffers = {dtype: (np.concatenate(parts) if parts else np.zeros(0)) for dtype, parts in chunks.items()}
    return buffers, layout


class PackedModel:
    """``model``'s forward pass reading its weights from packed variables (see the module docstring).

    Args:
        model: a built single-input Keras model; it is called, never changed.

    Attributes:
        variables: dtype name -> the ``tf.Variable`` holding that dtype's weights (``weights_<dtype>``).
        layout: :func:`pack_weights`'s layout.

    Example:
        >>> packed = PackedModel(model)  # doctest: +SKIP
        >>> root.weights_float32 = packed.variables["float32"]  # doctest: +SKIP
        >>> probabilities = packed(x)  # inside a tf.function: slices, then the model's graph  # doctest: +SKIP
    """

    def __init__(self, model):
        self.model = model
        buffers, self.layout = pack_weights(model)
        self.variables = {dtype: tf.Variable(values, trainable=False, name=f"weights_{dtype}")
                          for dtype, values in buffers.items()}
        self._trainable = len(model.trainable_variables)
        is_weight = _is_weight(model)
        self._constants = {i: v.numpy() for i, v in enumerate(_call_order(model)) if not is_weight(v)}

    def values(self) -> list:
        """Each variable of the model as a tensor: a weight cut from one read of its dtype's variable."""
        reads = {dtype: variable.read_value() for dtype, variable in self.variables.items()}
        weights = iter([tf.reshape(tf.slice(reads[w["dtype"]], [w["offset"]], [int(np.prod(w["shape"]))]),
                                   w["shape"]) for w in self.layout])
        count = len(self.layout) + len(self._constants)
        return [tf.constant(self._constants[i]) if i in self._constants else next(weights) for i in range(count)]

    def __call__(self, x, training: bool = False):
        if training:
            raise ValueError("PackedModel serves inference only: call it with training=False")
        values = self.values()
        outputs, _ = self.model.stateless_call(values[:self._trainable], values[self._trainable:], x,
                                               training=False)
        return outputs


def weights_layout(packed: PackedModel) -> dict:
    """The JSON written to ``assets.extra/weights.json``: the checkpoint key of each buffer and each weight."""
    return {"alignment_bytes": ALIGN_BYTES,
            "buffers": {dtype: {"checkpoint_key": f"weights_{dtype}/.ATTRIBUTES/VARIABLE_VALUE",
                                "elements": int(variable.shape[0])}
                        for dtype, variable in packed.variables.items()},
            "weights": packed.layout}


def unpack_weights(version_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The named weights of a kerasmer SavedModel, read from its checkpoint without loading the graph.

    Args:
        version_dir: an export's version directory (``saved_models/larnet/1``).

    Returns:
        Weight name (the Keras variable path, e.g. ``"conv1/kernel"``) -> its array, in the model's order.

    Raises:
        FileNotFoundError: ``version_dir`` has no ``assets.extra/weights.json`` (not a packed kerasmer export).

    Example:
        >>> weights = unpack_weights("saved_models/larnet/1")  # doctest: +SKIP
        >>> weights["conv1/kernel"].shape  # doctest: +SKIP
        (7, 7, 3, 64)
    """
    version_dir = Path(version_dir)
    layout_file = version_dir / "assets.extra" / LAYOUT_FILE
    if not layout_file.is_file():
        raise FileNotFoundError(f"unpack_weights: {layout_file} does not exist; {version_dir} is not a kerasmer "
                                "export with packed weights")
    layout = json.loads(layout_file.read_text())
    reader = tf.train.load_checkpoint(str(version_dir / "variables" / "variables"))
    buffers = {dtype: reader.get_tensor(b["checkpoint_key"]) for dtype, b in layout["buffers"].items()}
    return {w["name"]: buffers[w["dtype"]][w["offset"]:w["offset"] + int(np.prod(w["shape"]))].reshape(w["shape"])
            for w in layout["weights"]}


__all__ = ["ALIGN_BYTES", "LAYOUT_FILE", "PackedModel", "pack_weights", "unpack_weights", "weights_layout"]
