"""SavedModel export in TF Serving's base-path layout.

``saved_models/<name>/<version>/`` with integer versions, signatures with a ``None`` batch dimension
(:mod:`kerasmer.export.signatures`: ``serving_default`` takes raw face-cropped uint8 frames for the
modalities computed in-graph, ``serving_bytes`` JPEG frames, ``serving_precomputed`` the model input), and
beside them in ``<version>/assets.extra/`` (the folder TF Serving reserves for extra files) the class
names, kerasmer's metadata and TF Serving's warm-up requests.  See docs/serving.md.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasmer.core.atomic import atomic_directory, remove_stale_temporaries
from kerasmer.export.packing import LAYOUT_FILE, PackedModel, weights_layout
from kerasmer.export.preprocess import INDEX_SAMPLERS, RAW_MODALITIES
from kerasmer.export.signatures import (BYTES, FLOW_NOTE, PRECOMPUTED, RAW, RAW_APEX, UNKNOWN_NOTE,
                                        serving_functions, signature_table)
from kerasmer.export.warmup import write_warmup_requests
from kerasmer.models import folding, list_models, model_info

CLASS_NAMES_FILE = "class_names.json"
METADATA_FILE = "kerasmer.json"


def next_version(base_path: str | os.PathLike) -> int:
    """The next free integer version under ``base_path`` (1 when none exists)."""
    base = Path(base_path)
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(model: keras.Model, base_path: str | os.PathLike, version: int | None = None, *,
                       class_names=None, normalization=None, metadata: dict | None = None,
                       overwrite: bool = False, modality: str | None = None, sampler: str | None = None,
                       warmup: bool = True, fold_batch_norms: bool = True) -> Path:
    """Export ``model`` as a SavedModel that TF Serving can load.

    Args:
        model: a single-input Keras model.
        base_path: the model's base path, e.g. ``"saved_models/learnet"``.
        version: integer version; defaults to the next free one.
        class_names: names of the output classes, stored in
            ``assets.extra/class_names.json``; their number must match the output.
        normalization: optional ``(mean, std)`` per-channel arrays applied inside the
            serving function, so clients send raw (un-normalized) inputs.
        metadata: extra JSON-serialisable facts stored in ``assets.extra/kerasmer.json``
            (the model name and input shape are added automatically).
        overwrite: replace an existing version instead of raising.
        modality: the model's input modality; default ``metadata["modality"]``, else the registry entry of
            ``model.name`` (:func:`kerasmer.model_info`).  ``"dynamic_image"``, ``"frame"`` and ``"clip"``
            get the raw-frame signatures (:mod:`kerasmer.export.signatures`); ``"flow"`` and unknown ones
            keep the precomputed input as ``serving_default`` and say why in ``kerasmer.json``'s ``"note"``.
        sampler: the clip sampler; default ``metadata["sampler"]``, else the registry's, else ``"uniform"``.
        warmup: write ``assets.extra/tf_serving_warmup_requests`` (one request per signature).
        fold_batch_norms: serve the inference graph, :func:`kerasmer.models.fold_batch_norms` (each batch
            norm folded into the conv before it, else one multiply-add): the same outputs up to float
            rounding, half of LARNet's weights, a faster load and call.  ``False`` exports the graph as is.

    Returns:
        The path of the written version directory.

    Raises:
        ValueError: bad version, class-name count, a normalization whose channel
            count differs from the model input's, or an existing version without ``overwrite``.

    The write is atomic: the SavedModel is written to a temporary directory
    beside the target and renamed into place, so TF Serving never sees a
    half-written version.

    Example:
        >>> export_saved_model(model, "saved_models/learnet", class_names=["neg", "pos", "sur"])  # doctest: +SKIP
        PosixPath('saved_models/learnet/1')
    """
    base = Path(base_path)
    version = next_version(base) if version is None else version
    class_names = _check_export(model, version, class_names)
    _check_normalization(model, normalization)
    target = base / str(version)
    if target.exists() and not overwrite:
        raise ValueError(f"export_saved_model: {target} already exists (pass overwrite=True or another version)")
    base.mkdir(parents=True, exist_ok=True)
    # A killed export leaves .tmp-<pid>-* beside the versions; sweep those whose process is dead (not a live one's).
    remove_stale_temporaries(base)
    raw = _raw_options(model, modality, sampler, metadata)
    model = folding.fold_batch_norms(model) if fold_batch_norms else model
    root, signatures, spec, layout = _serving_module(model, normalization, raw, class_names)
    with atomic_directory(target) as tmp:
        # "serve" as ExportArchive named it, kept for old clients: the precomputed input, like serving_precomputed.
        # TensorFlow logs "Assets written to: <this temporary directory>" at INFO: a path renamed away, so hidden.
        tf_logger, no_info = tf.get_logger(), (lambda record: record.levelno >= logging.WARNING)
        tf_logger.addFilter(no_info)
        try:
            tf.saved_model.save(root, str(tmp), signatures={"serve": signatures[PRECOMPUTED], **signatures})
        finally:
            tf_logger.removeFilter(no_info)
        meta = _metadata(model, spec, normalization, **_raw_metadata(raw, signatures, spec),
                         batch_norms={k: len(v) for k, v in getattr(model, "folding", {}).items()})
        (tmp / "assets.extra").mkdir(exist_ok=True)
        (tmp / "assets.extra" / LAYOUT_FILE).write_text(json.dumps(layout))
        meta["weights"] = {"packed": LAYOUT_FILE, "buffers": {k: b["elements"] for k, b in layout["buffers"].items()},
                           "count": len(layout["weights"])}
        if warmup:
            meta["warmup_requests"] = write_warmup_requests(tmp / "assets.extra", signatures, spec, base.name)
        _write_extras(tmp / "assets.extra", {**meta, **(metadata or {})}, class_names)
    return target


def _metadata(model: keras.Model, spec, normalization, **extra) -> dict:
    """``kerasmer.json``'s facts about the model, its input and the in-graph normalization, plus ``extra``."""
    meta = {"model": model.name, "input_name": spec.name, "input_shape": list(spec.shape.as_list()[1:]),
            "num_classes": int(model.outputs[0].shape[-1]), "keras_version": keras.__version__,
            "tf_version": tf.__version__, **extra}
    if normalization is not None:
        meta["normalization"] = {"mean": np.asarray(normalization[0]).tolist(),
                                 "std": np.asarray(normalization[1]).tolist(), "applied_in_graph": True}
    return meta


def _check_export(model: keras.Model, version, class_names) -> list[str] | None:
    """Validate the version, the model's inputs and the class names; return the names as strings."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"export_saved_model: version must be a non-negative int, got {version!r}")
    if len(model.inputs) != 1:
        raise ValueError(f"export_saved_model: expected a single-input model, {model.name} has {len(model.inputs)}")
    num_outputs = model.outputs[0].shape[-1]
    if class_names is None:
        return None
    class_names = [str(c) for c in class_names]
    if len(class_names) != num_outputs:
        raise ValueError(f"export_saved_model: {len(class_names)} class_names given but {model.name} "
                         f"outputs {num_outputs} classes")
    return class_names


def _check_normalization(model: keras.Model, normalization) -> None:
    """``normalization`` must be ``(mean, std)``, each one value or one per channel of the model's input."""
    if normalization is None:
        return
    channels = model.inputs[0].shape[-1]
    if not isinstance(normalization, (tuple, list)) or len(normalization) != 2:
        raise ValueError(f"export_saved_model: normalization must be a (mean, std) pair, got {normalization!r}")
    for name, values in zip(("mean", "std"), normalization):
        size = np.asarray(values).size
        if size not in (1, channels) or np.asarray(values).ndim > 1:
            raise ValueError(f"export_saved_model: normalization {name} has {size} values, but {model.name}'s input "
                             f"has {channels} channels (shape {tuple(model.inputs[0].shape[1:])}); give one value "
                             "or one per channel")
    if np.any(np.asarray(normalization[1], dtype="float64") == 0):
        raise ValueError(f"export_saved_model: normalization std has a zero ({normalization[1]!r}); "
                         "the served inputs would be divided by it")


def _raw_options(model: keras.Model, modality, sampler, metadata) -> dict:
    """The modality and sampler the raw-frame signatures preprocess for: given, in the metadata, or registered.

    Returns:
        ``{"modality", "sampler", "raw_frames"}`` (``None`` where unknown); ``raw_frames`` is False, with a
        ``note``, when the model's input cannot be made from frames (say 8 channels), so the export keeps
        the precomputed input as ``serving_default``.

    Raises:
        ValueError: ``modality=`` given for an input it cannot make, or an unknown sampler.

    Example:
        >>> _raw_options(kerasmer.build_model("learnet"), None, None, None)  # doctest: +SKIP
        {'modality': 'dynamic_image', 'sampler': None, 'raw_frames': True}
    """
    meta, given = metadata or {}, modality
    registered = model.name in list_models()
    info = model_info(model.name) if registered else None
    modality = modality or meta.get("modality") or (info.modality if info else None)
    if modality == "clip":
        sampler = sampler or meta.get("sampler") or (info.sampler if info and info.modality == "clip" else None)
        sampler = sampler or "uniform"
        if sampler not in INDEX_SAMPLERS:
            raise ValueError(f"export_saved_model: sampler must be one of {INDEX_SAMPLERS}, got {sampler!r}")
    else:
        sampler = None
    problem = _raw_shape_problem(model, modality)
    if problem and given:
        raise ValueError(f"export_saved_model: {problem}")
    if problem:  # a registered modality on an input frames cannot make: serve the precomputed input, say why
        return {"modality": modality, "sampler": sampler, "raw_frames": False,
                "note": f"no raw-frame signature: {problem}; serving_default takes the precomputed input"}
    return {"modality": modality, "sampler": sampler, "raw_frames": modality in RAW_MODALITIES}


def _raw_shape_problem(model: keras.Model, modality) -> str | None:
    """Why frames cannot make the model's input: in-graph modalities need fixed (H, W, C) or (T, H, W, C) inputs
    with 1 or 3 channels.  None when they can (or the modality is not built in-graph)."""
    if modality not in RAW_MODALITIES:
        return None
    shape = tuple(model.inputs[0].shape[1:])
    rank = 4 if modality == "clip" else 3
    if len(shape) != rank or shape[-1] not in (1, 3) or any(d is None for d in shape):
        dims = "(T, H, W, C)" if rank == 4 else "(H, W, C)"
        return (f"modality {modality!r} needs a fixed {dims} input with 1 or 3 channels, but {model.name}'s "
                f"input is {shape}")
    return None


def _raw_metadata(raw: dict, signatures: dict, spec) -> dict:
    """``kerasmer.json``'s description of the signatures and of how raw frames are turned into the input."""
    meta = {"modality": raw["modality"], "signatures": signature_table(signatures, spec)}
    if raw["sampler"]:
        meta["sampler"] = raw["sampler"]
    if raw.get("raw_frames", raw["modality"] in RAW_MODALITIES):
        meta["raw_frames"] = {"signatures": [RAW, RAW_APEX, BYTES], "apex": "T // 2 (middle frame) in "
                              f"{RAW} and {BYTES}; given per clip in {RAW_APEX}",
                              "preprocessing": "kerasmer.export.preprocess.frames_to_input"}
    else:
        meta["note"] = raw.get("note") or (FLOW_NOTE if raw["modality"] == "flow" else UNKNOWN_NOTE)
    return meta


def _serving_module(model: keras.Model, normalization, raw: dict | None = None, class_names=None):
    """A trackable holding each weight once, packed, with the serving functions (:mod:`kerasmer.export.signatures`).

    ``keras.export.ExportArchive`` saves every weight twice: once as the Keras
    variable listed under ``variables`` (a trackable of its own) and once as the
    ``tf.Variable`` inside it, which it adds under ``_all_variables`` because the
    traced function captures it; a 33M-weight model then writes 66M values. Here
    the root tracks only the packed variables of :mod:`kerasmer.export.packing`, one
    per dtype (``weights_float32``, ...), which the serving functions slice each
    weight from: each weight is written once, and a load creates and restores a
    handful of variables instead of one per weight.

    Args:
        model: a built single-input Keras model.
        normalization: ``None`` or a checked ``(mean, std)`` pair.
        raw: ``{"modality", "sampler"}`` from :func:`_raw_options` (``None``: precomputed input only).
        class_names: the names the ``classes`` output returns, or ``None``.

    Returns:
        ``(root, signatures, spec, layout)``: the object to save (with ``preprocess``, the in-graph input
        builder, when there are raw-frame signatures), name -> ``tf.function``, the model input's spec,
        and the packed weights' layout (``assets.extra/weights.json``, :func:`~kerasmer.export.packing.weights_layout`).

    Example:
        >>> root, sigs, spec, layout = _serving_module(model, None)  # doctest: +SKIP
        >>> tf.saved_model.save(root, "out", signatures=sigs)  # doctest: +SKIP
    """
    raw = raw or {"modality": None, "sampler": None}
    served = raw["modality"] if raw.get("raw_frames", True) else None  # None: the precomputed input only
    inp = model.inputs[0]
    input_name = inp.name.split(":")[0] if getattr(inp, "name", None) else "inputs"
    spec = tf.TensorSpec((None,) + tuple(inp.shape[1:]), tf.float32, name=input_name)
    packed = PackedModel(model)
    signatures, preprocess = serving_functions(packed, spec, modality=served, sampler=raw["sampler"],
                                               normalization=normalization, class_names=class_names)
    root = tf.__internal__.tracking.AutoTrackable()
    for dtype, variable in packed.variables.items():  # checkpoint keys "weights_<dtype>/..." (weights.json)
        setattr(root, f"weights_{dtype}", variable)
    # ExportArchive's root had these lists; an export serves inference, so nothing in it is trainable.
    root.variables = root.non_trainable_variables = list(packed.variables.values())
    root.trainable_variables = []
    root.serve = signatures[PRECOMPUTED]
    if preprocess is not None:  # the in-graph input builder, callable after loading (the skew tests use it)
        root.preprocess = preprocess
    return root, signatures, spec, weights_layout(packed)


def _write_extras(extra: Path, meta: dict, class_names) -> None:
    """``assets.extra/``: the class names and kerasmer's metadata beside the SavedModel."""
    extra.mkdir(exist_ok=True)
    if class_names is not None:
        (extra / CLASS_NAMES_FILE).write_text(json.dumps(class_names, indent=2))
        meta["class_names"] = class_names
    (extra / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=str))


def load_class_names(version_dir: str | os.PathLike) -> list[str] | None:
    """Class names stored beside an exported version, or None if none were stored."""
    path = Path(version_dir) / "assets.extra" / CLASS_NAMES_FILE
    return json.loads(path.read_text()) if path.exists() else None
