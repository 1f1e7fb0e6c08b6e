"""Weight transfer in one place: copying weights by layer name, ``--init-from`` and freezing.

Used by the Micro-Attention ResNet (initialise the attention model from a
trained attention-free ResNet), by LARNet (initialise stages from saved
Attention-92/56 weights) and by training (``kerasmer train --init-from``,
``--freeze``).

* :func:`load_weights_by_name` copies weights from a ``keras.Model`` or a
  ``.keras`` file wherever layer names match.
* :func:`init_weights` is ``--init-from``: a ``.keras`` file goes through
  :func:`load_weights_by_name`.  A ``.weights.h5`` file holds no architecture
  and Keras 3 keys its layers by class and position (``layers/conv2d_1/vars/0``),
  not by name; the target's layers are given keys with the same rule
  (:func:`h5_layer_keys`) and matched on them, with shapes checked.  That works
  between models of the same architecture (a different classifier head is
  reported as a shape mismatch and left as initialised); for transfer between
  *different* architectures use a ``.keras`` file, whose layers are matched by name.
* :func:`freeze_layers` freezes layers by a shell-style name pattern;
  :func:`freeze_initialised` only where a transfer initialised every layer
  (a recipe's ``freeze_pretrained``, e.g. LARNet's pretrained stages 1-2).

Every copy goes through :func:`copy_weights` and is recorded in a
:class:`TransferReport`.

Example:
    >>> report = init_weights(model, "runs/pretrain/model.weights.h5")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    >>> freeze_layers(model, "conv*")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from pathlib import Path

import keras


@dataclasses.dataclass
class TransferReport:
    """What :func:`load_weights_by_name` did.

    Attributes:
        matched: target layer names whose weights were copied.
        unmatched_target: target layers with weights that received nothing
            (e.g. freshly initialised attention layers).
        unmatched_source: source layers with weights that found no target.
        shape_mismatch: names present in both whose weight shapes differ
            (never copied).
    """

    matched: list = dataclasses.field(default_factory=list)
    unmatched_target: list = dataclasses.field(default_factory=list)
    unmatched_source: list = dataclasses.field(default_factory=list)
    shape_mismatch: list = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.matched)} layers matched, {len(self.unmatched_target)} target layers unmatched, "
                f"{len(self.unmatched_source)} source layers unused, {len(self.shape_mismatch)} shape mismatches")


def _weighted_layers(model: keras.Model) -> dict:
    """Map layer name -> layer for every layer (recursing into nested models) that has weights."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.update(_weighted_layers(layer))
        elif layer.weights:
            out[layer.name] = layer
    return out


def as_model(source) -> keras.Model:
    """``source`` itself if it is a ``keras.Model``, else the model saved in that ``.keras`` file.

    Args:
        source: a ``keras.Model`` or a path to a ``.keras`` file (loaded in
            safe mode, uncompiled).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a path that is not a ``.keras`` file.
    """
    if isinstance(source, keras.Model):
        return source
    path = Path(os.fspath(source))
    if not path.exists():
        raise FileNotFoundError(f"load_weights_by_name: no such file {path}")
    if path.suffix == ".keras":
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    raise ValueError(f"load_weights_by_name: {path} must be a .keras file or a keras.Model "
                     "(for .weights.h5 files use init_weights)")


def load_weights_by_name(target: keras.Model, source, *, rename=None, strict_shapes: bool = True) -> TransferReport:
    """Copy weights from ``source`` into ``target`` wherever layer names match.

    Args:
        target: the model to initialise (modified in place).
        source: a ``keras.Model`` or a path to a ``.keras`` file.
        rename: optional callable mapping a source layer name to the target
            name (e.g. ``lambda n: "stage1_" + n`` to load an Attention-92 into
            LARNet's first stage); return ``None`` to skip a layer.
        strict_shapes: raise on a same-named layer whose weight shapes differ;
            with False such layers are skipped and listed in the report.

    Returns:
        A :class:`TransferReport`.

    Raises:
        ValueError: a shape mismatch with ``strict_shapes``.

    Example:
        >>> base = kerasmer.build_model("micro_attention_resnet", micro_attention=False)  # doctest: +SKIP
        >>> model = kerasmer.build_model("micro_attention_resnet")  # doctest: +SKIP
        >>> print(load_weights_by_name(model, base).summary())  # doctest: +SKIP
    """
    src_layers = _weighted_layers(as_model(source))
    dst_layers = _weighted_layers(target)
    report = TransferReport()
    used = set()
    for src_name, src in src_layers.items():
        dst_name = rename(src_name) if rename else src_name
        if dst_name is None or dst_name not in dst_layers:
            report.unmatched_source.append(src_name)
            continue
        if copy_weights(report, dst_layers[dst_name], src.get_weights(), source=f"source layer {src_name!r}",
                        strict_shapes=strict_shapes):
            used.add(dst_name)
    report.unmatched_target = [n for n in dst_layers if n not in used]
    return report


def copy_weights(report: TransferReport, layer, arrays, *, source: str, strict_shapes: bool) -> bool:
    """Set ``layer``'s weights to ``arrays`` if the shapes agree, recording the outcome in ``report``.

    Args:
        report: the :class:`TransferReport` to update (``matched`` or ``shape_mismatch``).
        layer: the target layer.
        arrays: the source weights, in the layer's weight order.
        source: how to name the source in an error message.
        strict_shapes: raise on a shape mismatch instead of recording it.

    Returns:
        True when the weights were copied.
    """
    shapes = [tuple(w.shape) for w in layer.weights]
    if shapes != [tuple(a.shape) for a in arrays]:
        if strict_shapes:
            raise ValueError(f"load_weights_by_name: layer {layer.name!r} has weight shapes {shapes} "
                             f"but {source} has {[tuple(a.shape) for a in arrays]}")
        report.shape_mismatch.append(layer.name)
        return False
    layer.set_weights(arrays)
    report.matched.append(layer.name)
    return True


def freeze_layers(model: keras.Model, pattern: str) -> list[str]:
    """Freeze every layer whose name matches the shell-style ``pattern``.

    Returns:
        The names of the frozen layers.

    Raises:
        ValueError: when no layer matches (a typo would otherwise freeze nothing silently).
    """
    frozen = []
    for layer in model.layers:
        if fnmatch.fnmatch(layer.name, pattern):
            layer.trainable = False
            frozen.append(layer.name)
    if not frozen:
        raise ValueError(f"freeze_layers: no layer of {model.name} matches {pattern!r}")
    return frozen


def freeze_initialised(model: keras.Model, patterns, matched) -> dict:
    """Freeze each pattern's layers if a weight transfer initialised all of them.

    Freezing layers that kept their random initialisation would fix them at
    noise, so a pattern is frozen only when every top-level layer with weights
    that it matches is in ``matched`` (e.g. LARNet's ImageNet-pretrained stages,
    which the paper froze: Hashmi et al., Sensors 2021, §3).

    Args:
        model: the model (modified in place).
        patterns: shell-style layer-name patterns, one per group (e.g. ``"stage1_*"``).
        matched: names of the layers that received weights (``TransferReport.matched``).

    Returns:
        ``{"patterns": [frozen patterns], "frozen": [layer names], "kept": {pattern: reason}}``.

    Example:
        >>> report = init_weights(model, "larnet_imagenet_stages.keras")          # doctest: +SKIP
        >>> freeze_initialised(model, ("stage1_*", "stage2_*"), report.matched)  # doctest: +SKIP
    """
    matched = set(matched)
    out = {"patterns": [], "frozen": [], "kept": {}}
    for pattern in patterns:
        weighted = [layer.name for layer in model.layers if layer.weights and fnmatch.fnmatch(layer.name, pattern)]
        missing = [n for n in weighted if n not in matched]
        if not weighted:
            out["kept"][pattern] = "no layer with weights matches"
        elif missing:
            out["kept"][pattern] = f"{len(missing)} of {len(weighted)} layers got no weights (e.g. {missing[:3]})"
        else:
            out["frozen"] += freeze_layers(model, pattern)
            out["patterns"].append(pattern)
    return out


# ------------------------------------------------------------------ --init-from


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
        A :class:`TransferReport` with the matched and unmatched layers.

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


__all__ = ["TransferReport", "as_model", "copy_weights", "freeze_initialised", "freeze_layers", "h5_layer_keys",
           "init_weights", "load_weights_by_name", "read_h5_layer_weights"]
