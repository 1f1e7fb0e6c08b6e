"""Weight transfer by layer name: transfer learning and stage initialisation.

Used by the Micro-Attention ResNet (initialise the attention model from a
trained attention-free ResNet), by LARNet (initialise stages from saved
Attention-92/56 weights) and by ``kerasmer train --init-from``.
"""

from __future__ import annotations

import dataclasses
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


def _as_model(source) -> keras.Model:
    if isinstance(source, keras.Model):
        return source
    path = Path(os.fspath(source))
    if not path.exists():
        raise FileNotFoundError(f"load_weights_by_name: no such file {path}")
    if path.suffix == ".keras":
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    raise ValueError(f"load_weights_by_name: {path} must be a .keras file or a keras.Model "
                     "(for .weights.h5 files use load_weights_h5_by_name)")


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
    src_layers = _weighted_layers(_as_model(source))
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
    import fnmatch

    frozen = []
    for layer in model.layers:
        if fnmatch.fnmatch(layer.name, pattern):
            layer.trainable = False
            frozen.append(layer.name)
    if not frozen:
        raise ValueError(f"freeze_layers: no layer of {model.name} matches {pattern!r}")
    return frozen
