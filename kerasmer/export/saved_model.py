"""SavedModel export in TF Serving's base-path layout.

``saved_models/<name>/<version>/`` with integer versions, a ``serving_default``
signature with a ``None`` batch dimension, and the class names beside it in
``<version>/assets.extra/`` (the folder TF Serving reserves for extra files).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasmer.core.atomic import atomic_directory, remove_stale_temporaries

CLASS_NAMES_FILE = "class_names.json"
METADATA_FILE = "kerasmer.json"


def next_version(base_path: str | os.PathLike) -> int:
    """The next free integer version under ``base_path`` (1 when none exists)."""
    base = Path(base_path)
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(model: keras.Model, base_path: str | os.PathLike, version: int | None = None, *,
                       class_names=None, normalization=None, metadata: dict | None = None,
                       overwrite: bool = False) -> Path:
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
    root, serve, spec = _serving_module(model, normalization)
    with atomic_directory(target) as tmp:
        # "serve" as ExportArchive named it; TF Serving reads "serving_default".
        tf.saved_model.save(root, str(tmp), signatures={"serve": serve, "serving_default": serve})
        meta = {"model": model.name, "input_name": spec.name, "input_shape": list(spec.shape.as_list()[1:]),
                "num_classes": int(model.outputs[0].shape[-1]), "keras_version": keras.__version__,
                "tf_version": tf.__version__}
        if normalization is not None:
            meta["normalization"] = {"mean": np.asarray(normalization[0]).tolist(),
                                     "std": np.asarray(normalization[1]).tolist(), "applied_in_graph": True}
        _write_extras(tmp / "assets.extra", {**meta, **(metadata or {})}, class_names)
    return target


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


def _serving_module(model: keras.Model, normalization):
    """A trackable holding each weight once, with a ``serve`` function that normalises in-graph.

    ``keras.export.ExportArchive`` saves every weight twice: once as the Keras
    variable listed under ``variables`` (a trackable of its own) and once as the
    ``tf.Variable`` inside it, which it adds under ``_all_variables`` because the
    traced function captures it; a 33M-weight model then writes 66M values. Here
    the root tracks only the ``tf.Variable`` objects the traced function captures,
    so each is written once (a variable listed twice is one object, saved once).

    Args:
        model: a built single-input Keras model.
        normalization: ``None`` or a checked ``(mean, std)`` pair.

    Returns:
        ``(root, serve, spec)``: the object to save, its ``tf.function`` (traced once
        for a ``None`` batch) and the input's ``tf.TensorSpec``.

    Example:
        >>> root, serve, spec = _serving_module(model, None)  # doctest: +SKIP
        >>> tf.saved_model.save(root, "out", signatures={"serving_default": serve})  # doctest: +SKIP
    """
    inp = model.inputs[0]
    input_name = inp.name.split(":")[0] if getattr(inp, "name", None) else "inputs"
    spec = tf.TensorSpec((None,) + tuple(inp.shape[1:]), tf.float32, name=input_name)
    if normalization is not None:
        mean = tf.constant(np.asarray(normalization[0], dtype="float32"))
        std = tf.constant(np.asarray(normalization[1], dtype="float32"))
    else:
        mean = std = None

    @tf.function(input_signature=[spec], autograph=False)
    def serve(x):
        if mean is not None:
            x = (x - mean) / std
        return {"probabilities": tf.cast(model(x, training=False), tf.float32)}

    captured = serve.get_concrete_function()
    # AutoTrackable (what ExportArchive's root is) keeps the reloaded object's ``variables``,
    # ``trainable_variables`` and ``non_trainable_variables``; the lists share the same objects.
    root = tf.__internal__.tracking.AutoTrackable()
    trainable_ids = {id(v) for v in captured.trainable_variables}
    root.variables = list(captured.variables)
    root.trainable_variables = list(captured.trainable_variables)
    root.non_trainable_variables = [v for v in captured.variables if id(v) not in trainable_ids]
    root.serve = serve
    return root, serve, spec


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
