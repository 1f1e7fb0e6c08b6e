"""Finding and checking a kerasmer export: ``saved_models/<name>[/<version>]`` -> its version, metadata, names."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

from kerasmer.export.saved_model import CLASS_NAMES_FILE, METADATA_FILE


class ExportError(ValueError):
    """A path that is not a usable kerasmer export; the message is one line naming the path."""


@dataclass
class Exported:
    """A kerasmer export found on disk (the SavedModel itself loads on :meth:`load`).

    Attributes:
        path: the version directory (holds ``saved_model.pb``).
        version: its integer version, or ``None`` for a directory not named by a number.
        metadata: ``assets.extra/kerasmer.json`` (model, modality, input_shape, signatures, ...).
        class_names: the stored class names, or ``None``.
    """

    path: Path
    version: int | None
    metadata: dict
    class_names: list[str] | None = None
    _loaded: object = field(default=None, repr=False)

    @property
    def raw_frames(self) -> bool:
        """Whether ``serving_default`` takes raw uint8 frames (``False``: the precomputed input, see ``note``)."""
        return "raw_frames" in self.metadata

    def load(self):
        """The SavedModel, loaded once with ``tf.saved_model.load``; its ``signatures`` are the serving ones.

        Example:
            >>> fn = load_exported("saved_models/learnet").load().signatures["serving_default"]  # doctest: +SKIP
        """
        if self._loaded is None:
            self._loaded = tf.saved_model.load(str(self.path))
        return self._loaded


def _version_dir(path: Path) -> Path:
    """``path`` if it holds ``saved_model.pb``, else its newest integer version; ExportError otherwise."""
    if not path.exists():
        raise ExportError(f"{path}: no such file or directory")
    if (path / "saved_model.pb").is_file():
        return path
    if not path.is_dir():
        raise ExportError(f"{path}: not a SavedModel directory (a file, not saved_models/<name>[/<version>])")
    versions = sorted((int(p.name), p) for p in path.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions:
        raise ExportError(f"{path}: neither a SavedModel (no saved_model.pb) nor a base path of numbered versions")
    newest = versions[-1][1]
    if not (newest / "saved_model.pb").is_file():
        raise ExportError(f"{newest}: the newest version holds no saved_model.pb")
    return newest


def load_exported(path: str | os.PathLike) -> Exported:
    """Resolve and check a kerasmer export: its newest version, ``kerasmer.json`` and class names.

    Args:
        path: a base path ``saved_models/<name>`` (its newest integer version is used) or a version directory.

    Returns:
        An :class:`Exported` (call ``.load()`` for the SavedModel).

    Raises:
        ExportError: (a ``ValueError``) with one line naming the path and what is wrong: missing, no
            SavedModel, a SavedModel from another program (no ``assets.extra/kerasmer.json``), or
            unreadable metadata.

    Example:
        >>> exported = load_exported("saved_models/learnet")  # doctest: +SKIP
        >>> exported.version, exported.metadata["modality"]  # doctest: +SKIP
        (3, 'dynamic_image')
    """
    version_dir = _version_dir(Path(path))
    meta_file = version_dir / "assets.extra" / METADATA_FILE
    if not meta_file.is_file():
        raise ExportError(f"{version_dir}: a SavedModel from another program, not a kerasmer export "
                          f"(no assets.extra/{METADATA_FILE})")
    try:
        metadata = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ExportError(f"{meta_file}: unreadable kerasmer metadata ({err})") from None
    if not isinstance(metadata, dict) or "input_shape" not in metadata:
        raise ExportError(f"{meta_file}: not kerasmer metadata (no input_shape)")
    names_file = version_dir / "assets.extra" / CLASS_NAMES_FILE
    try:
        names = json.loads(names_file.read_text()) if names_file.is_file() else metadata.get("class_names")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ExportError(f"{names_file}: unreadable class names ({err})") from None
    version = int(version_dir.name) if version_dir.name.isdigit() else None
    return Exported(version_dir, version, metadata, names)


__all__ = ["ExportError", "Exported", "load_exported"]
