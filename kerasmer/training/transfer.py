"""``--init-from``: weights by layer name from a ``.keras`` or ``.weights.h5`` file.

``.keras`` files go through :func:`kerasmer.models.transfer.load_weights_by_name`.
``.weights.h5`` files hold no architecture and Keras 3 keys their layers by
class and position (``layers/conv2d_1/vars/0``), not by name; the target's
layers are given keys with the same rule and matched on them, with shapes
checked.  That works between models of the same architecture (a different
classifier head is reported as a shape mismatch and left as initialised);
for transfer between *different* architectures use a ``.keras`` file, whose
layers are matched by name.

Example:
    >>> report = init_weights(model, "runs/pretrain/model.weights.h5")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from kerasmer.models.transfer import TransferReport, _weighted_layers, copy_weights, load_weights_by_name


def read_h5_layer_weights(path: str | os.PathLike) -> dict:
    """``{group path: [arrays]}`` of every layer in a Keras 3 ``.weights.h5`` file.

    Keras 3 stores layers under keys made from their *class* and order
    (``layers/conv2d``, ``layers/conv2d_1``, ...), not their names.

    Raises:
        ValueError: the file holds no layer weights in Keras 3's layout.
    """
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group) and name.endswith("/vars") and not name.startswith("optimizer"):
                keys = sorted(obj.keys(), key=lambda k: int(k) if k.isdigit() else k)
                if keys:
                    out[name[: -len("/vars")]] = [obj[k][()] for k in keys]
        f.visititems(visit)
    if not out:
        raise ValueError(f"init-from: {path} holds no layer weights in the Keras 3 .weights.h5 layout")
    return out


def h5_layer_keys(model: keras.Model, prefix: str = "layers") -> dict:
    """``{h5 group path: layer}`` for ``model``, using Keras 3's own key rule (class name + counter)."""
    from keras.src.utils import naming

    out, used = {}, {}
    for layer in model.layers:
        key = naming.to_snake_case(layer.__class__.__name__)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        if isinstance(layer, keras.Model):
            out.update(h5_layer_keys(layer, f"{prefix}/{key}/layers"))
        elif layer.weights:
            out[f"{prefix}/{key}"] = layer
    return out


def init_weights(model: keras.Model, path: str | os.PathLike, *, strict_shapes: bool = False) -> TransferReport:
    """Initialise ``model`` from ``path`` wherever layer names match.

    Args:
        model: the target model (modified in place).
        path: a ``.keras`` or ``.weights.h5`` file.
        strict_shapes: raise on same-named layers with different shapes; by
            default they are skipped and listed (a new classifier head is the usual case).

    Returns:
        A :class:`~kerasmer.models.transfer.TransferReport` with the matched and unmatched layers.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file that is neither ``.keras`` nor ``.weights.h5``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init-from: no such file {path}")
    if path.name.endswith(".keras"):
        return load_weights_by_name(model, path, strict_shapes=strict_shapes)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"init-from: {path} must be a .keras or .weights.h5 file")
    source = read_h5_layer_weights(path)
    by_key = h5_layer_keys(model)
    targets = _weighted_layers(model)
    report = TransferReport()
    for key, arrays in source.items():
        layer = by_key.get(key)
        if layer is None:
            report.unmatched_source.append(key)
            continue
        copy_weights(report, layer, arrays, source=f"{path} ({key})", strict_shapes=strict_shapes)
    report.unmatched_target = [n for n in targets if n not in report.matched]
    return report
