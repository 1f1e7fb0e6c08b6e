"""The model to serve: an exported ``saved_models/<name>[/<version>]`` or a ``.keras`` file, checked and described.

:func:`load_served_model` resolves the path (the newest integer version of a base path), reads what the
model must be fed (modality, input shape, clip sampler, frame rate, normalisation, class names) and wraps
the call, so that :mod:`kerasmer.inference.pipeline` does not care which of the two it got.

Where the facts come from:

* an export: :func:`kerasmer.export.load_exported` (the newest version, ``assets.extra/kerasmer.json``, the
  class names); the normalisation there is applied inside the serving graph, so the un-normalised input is
  sent.  The called signature is the one taking the precomputed float32 input of the model's shape
  (``serving_precomputed``; ``serving_default`` in exports made before the raw-frame signatures), so the
  input is built by the same Python code as in training (:mod:`kerasmer.inference.recognise`).
* a ``.keras`` file: the registry entry of the model's name (:func:`kerasmer.model_info`); for a run
  directory's fold model (``RUN/folds/<fold>/model.keras``) the run's class names (``RUN/run.json``) and the
  fold's fitted normalisation (``result.json`` beside it); overridden by a sidecar ``<file>.json`` with the
  same keys as ``kerasmer.json`` when one exists.  A ``.keras`` file itself holds no normalisation: without
  one of these (or the ``normalization=`` argument) the inputs are fed **unnormalised**, which is right only
  for models trained without it; ``kerasmer predict`` prints a line saying so.

Precision: a ``.keras`` file is served in the policy :func:`kerasmer.core.precision.resolve_precision` picks for
``purpose="inference"`` (``precision="auto"``: float32 on a CPU, where bf16 measured no faster at batch 1;
see ``kerasmer/core/precision.py``).  When that is float32, a model trained in mixed precision is rebuilt to compute
in float32 (:func:`kerasmer.core.precision.float32_model`; its weights are float32 already); a mixed policy keeps
the layers' saved policies, and under ``mixed_bfloat16`` the conv and dense weights are stored in bfloat16 once
instead of cast on every call (:func:`kerasmer.core.precision.bfloat16_serving_model`, same outputs).  An
export runs in the precision its graph was exported in.  Both serve the inference graph: batch norms folded
into the convolutions before them (:func:`kerasmer.models.fold_batch_norms`; exports do it by default).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from kerasmer.core.precision import bfloat16_serving_model, float32_model, resolve_precision, validate_precision
from kerasmer.export.loading import ExportError, load_exported
from kerasmer.export.signatures import PRECOMPUTED
from kerasmer.layers.biased import inference_graph
from kerasmer.models import fold_batch_norms, model_info
from kerasmer.models.registry import MODALITIES
from kerasmer.inference.source import InferenceError

SERVABLE_MODALITIES = ("frame", "clip", "dynamic_image", "flow")
DEFAULT_MODEL_FPS = 200.0  # CASME II, SAMM and CAS(ME)^3's high-speed sets are recorded at 200 fps


@dataclass
class ServedModel:
    """A loaded model and what it must be fed.

    Attributes:
        path: the resolved ``.keras`` file or SavedModel version directory.
        name: the model's name (a registry name for kerasmer models).
        kind: ``"saved_model"`` or ``"keras"``.
        modality, input_shape, sampler: the input, as :func:`kerasmer.data.pipeline.inputs.input_from_frames` takes.
        class_names: one per output.
        fps: the frame rate the model's training clips had; clips are resampled to it.
        normalization: ``(mean, std)`` this object applies before the call, or ``None`` (none, or in-graph).
        flow: ``flow_from_pair`` options for flow models (from the metadata), or ``None``.
    """

    path: Path
    name: str
    kind: str
    modality: str
    input_shape: tuple
    sampler: str | None
    class_names: list[str]
    fps: float
    normalization: tuple | None
    flow: dict | None = None
    call: Callable = field(default=None, repr=False)

    def predict(self, x: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of a batch of model inputs ``(N, *input_shape)``.

        Example:
            >>> probs = served.predict(np.zeros((2, 32, 32, 3), np.float32))  # doctest: +SKIP
        """
        x = np.asarray(x, np.float32)
        if x.shape[1:] != tuple(self.input_shape):
            raise ValueError(f"{self.path}: inputs have shape {x.shape[1:]}, the model takes {tuple(self.input_shape)}")
        if self.normalization is not None:
            mean, std = (np.asarray(v, np.float32) for v in self.normalization)
            x = (x - mean) / std
        out = [np.asarray(self.call(x[i:i + batch_size]), np.float32) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)


def _check_modality(path, name, modality) -> str:
    if modality not in SERVABLE_MODALITIES:
        raise InferenceError(f"{path}: model {name!r} takes modality {modality!r}, which cannot be built from "
                             f"video frames (servable: {', '.join(SERVABLE_MODALITIES)})")
    return modality


def _class_names(path, meta: dict, count: int, default=None) -> list[str]:
    names = meta.get("class_names") or default or [f"class{i}" for i in range(count)]
    if len(names) != count:
        raise InferenceError(f"{path}: {len(names)} class names for a model with {count} outputs")
    return [str(n) for n in names]


def _normalization(meta: dict, *, in_graph_ok: bool):
    norm = meta.get("normalization")
    if not norm or (in_graph_ok and norm.get("applied_in_graph")):
        return None
    return np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)


def _registry_facts(name: str) -> dict:
    """What the registry knows about a model name; empty for a name it does not know."""
    try:
        info = model_info(name)
    except ValueError:
        return {}
    return {"modality": info.modality, "sampler": info.sampler,
            "class_names": list(info.class_names) if info.class_names else None}


def load_served_model(path: str | os.PathLike, *, normalization=None, class_names=None,
                      precision: str = "auto") -> ServedModel:
    """Load an exported SavedModel (``saved_models/<name>[/<version>]``) or a ``.keras`` file for inference.

    Args:
        path: the export's base path (the newest version is used), a version directory, or a ``.keras`` file.
        normalization: ``(mean, std)`` to apply before the model (``.keras`` files; exports apply theirs in-graph).
        class_names: override the stored class names.
        precision: the policy a ``.keras`` model computes in, resolved for inference
            (:func:`kerasmer.core.precision.resolve_precision` with ``purpose="inference"``): ``"auto"`` is
            float32 on a CPU; ``"float32"`` rebuilds a mixed-precision model to compute in float32; a mixed
            policy keeps the layers' saved policies (``"bf16"`` with its conv weights stored in bfloat16, the
            faster choice for batches of 4 or more).  Ignored for exports (their graph fixes it).

    Returns:
        A :class:`ServedModel`.

    Raises:
        InferenceError: a missing path, a SavedModel from another program (no ``assets.extra/kerasmer.json``),
            a model whose modality cannot be built from frames, or a ``.keras`` file whose modality is unknown.
        ValueError: an unknown ``precision``.

    Example:
        >>> served = load_served_model("saved_models/learnet")  # doctest: +SKIP
        >>> served.modality, served.input_shape  # doctest: +SKIP
        ('dynamic_image', (112, 112, 3))
    """
    precision = validate_precision(precision)  # a bad name fails before any loading
    path = Path(path)
    if not path.exists():
        raise InferenceError(f"{path}: no such model file or directory")
    if path.is_file():
        if path.suffix != ".keras":
            raise InferenceError(f"{path}: a model must be a .keras file or a SavedModel directory")
        served = _load_keras(path, normalization, precision)
    else:
        served = _load_saved_model(path)
        if normalization is not None:
            served.normalization = normalization
    if class_names is not None:
        served.class_names = _class_names(path, {"class_names": list(class_names)}, len(served.class_names))
    return served


def _run_facts(path: Path) -> dict:
    """Class names and normalisation of a run directory's fold model (``RUN/folds/<fold>/model.keras``), if any.

    The trainer writes the fold's fitted normalisation to ``result.json`` beside the model and the run's class
    names to ``RUN/run.json``; a ``.keras`` file elsewhere gives ``{}``.
    """
    if path.parent.parent.name != "folds":
        return {}
    facts = {}
    run_file, result_file = path.parents[2] / "run.json", path.parent / "result.json"
    if run_file.is_file() and json.loads(run_file.read_text()).get("class_names"):
        facts["class_names"] = list(json.loads(run_file.read_text())["class_names"])
    norm = json.loads(result_file.read_text()).get("normalization") if result_file.is_file() else None
    if norm:
        facts["normalization"] = {"mean": norm[0], "std": norm[1]}
    return facts


def _load_keras(path: Path, normalization, precision: str = "auto") -> ServedModel:
    sidecar = Path(str(path) + ".json")
    meta = {**_run_facts(path), **(json.loads(sidecar.read_text()) if sidecar.exists() else {})}
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 (Keras raises many types for a bad archive)
        raise InferenceError(f"{path}: cannot be loaded as a Keras model ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''})") from None
    model = fold_batch_norms(model)  # the inference graph: same outputs, BN folded into the convs (fewer ops)
    policy = resolve_precision(precision, purpose="inference")
    if policy == "float32":
        model = float32_model(model)  # mixed-precision training keeps float32 weights: nothing is lost
    elif policy == "mixed_bfloat16":
        model = bfloat16_serving_model(model)  # same outputs, no per-call weight casts
    facts = {**_registry_facts(model.name), **{k: v for k, v in meta.items() if v is not None}}
    if "modality" not in facts:
        raise InferenceError(f"{path}: model {model.name!r} is not registered and has no {sidecar.name} saying its "
                             f"modality (one of {', '.join(MODALITIES)})")
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    norm = normalization if normalization is not None else _normalization(facts, in_graph_ok=False)
    count = int(model.outputs[0].shape[-1])
    served = ServedModel(path, model.name, "keras", _check_modality(path, model.name, facts["modality"]), shape,
                         facts.get("sampler"), _class_names(path, facts, count),
                         float(facts.get("fps", DEFAULT_MODEL_FPS)), norm, facts.get("flow"),
                         call=_graph_call(model))
    served.keras_model = model  # the model actually called (float32 when the precision resolved to it)
    return served


def _graph_call(model: keras.Model):
    """``model``'s inference call as a ``tf.function``: graph mode, one kernel per op (see
    :func:`kerasmer.core.precision.frozen_weights_assumed`), and no per-op Python cost at each call."""
    @tf.function(reduce_retracing=True)
    def fn(x):
        with inference_graph():  # no gradients here: biases keep Keras' fusable BiasAdd
            return model(x, training=False)

    return lambda x: fn(tf.constant(x, tf.float32)).numpy()


def _load_saved_model(path: Path) -> ServedModel:
    try:
        exported = load_exported(path)
    except ExportError as err:
        raise InferenceError(str(err)) from None
    version, meta = exported.path, exported.metadata
    name = str(meta.get("model", "?"))
    facts = {**_registry_facts(name), **{k: v for k, v in meta.items() if v is not None}}
    if "modality" not in facts:
        raise InferenceError(f"{version}: kerasmer.json names no modality for model {name!r}")
    modality = _check_modality(version, name, facts["modality"])
    shape = tuple(int(d) for d in facts["input_shape"])
    loaded = exported.load()
    sig_name, input_name = _float_signature(loaded, shape, version)
    fn = loaded.signatures[sig_name]

    def call(x):
        out = fn(**{input_name: tf.constant(x, tf.float32)})
        return (out["probabilities"] if "probabilities" in out else next(iter(out.values()))).numpy()

    count = int(meta.get("num_classes", 0)) or len(exported.class_names or [])
    served = ServedModel(version, name, "saved_model", modality, shape, facts.get("sampler"),
                         _class_names(version, facts, count, exported.class_names),
                         float(facts.get("fps", DEFAULT_MODEL_FPS)), _normalization(facts, in_graph_ok=True),
                         facts.get("flow"), call=call)
    served.loaded = loaded  # keep the restored object (and its variables) alive with the signature
    return served


def _float_signature(loaded, shape: tuple, version: Path) -> tuple[str, str]:
    """The signature taking one float32 input ``(None, *shape)``: (its name, its input's name)."""
    # serving_precomputed in exports with raw-frame signatures; serving_default in older ones
    for sig_name in [PRECOMPUTED, "serving_default"] + sorted(loaded.signatures):
        if sig_name not in loaded.signatures:
            continue
        specs = loaded.signatures[sig_name].structured_input_signature[1]
        if len(specs) == 1:
            (input_name, spec), = specs.items()
            if spec.dtype.name == "float32" and tuple(spec.shape.as_list()[1:]) == shape:
                return sig_name, input_name
    raise InferenceError(f"{version}: no signature takes the precomputed float32 input {shape}; "
                         f"signatures: {sorted(loaded.signatures)}")


__all__ = ["DEFAULT_MODEL_FPS", "SERVABLE_MODALITIES", "ServedModel", "load_served_model"]
