"""Dataset readers: ``read_dataset(name, root)`` for every supported dataset, and what the readers share.

Each dataset is one module in this folder that registers a reader with
:func:`register_reader`; every such module is imported on first use, so adding
a dataset means writing one file.  Every reader returns the DataFrame schema of
:mod:`kerasmer.data.schema`.

Beside them: :mod:`~kerasmer.data.readers.fixes` (the documented corrections of
the official annotations, ``annotation_fixes.csv``) and
:mod:`~kerasmer.data.readers.labels` (label schemes and composite datasets).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable

import pandas as pd

from kerasmer.data.schema import COLUMNS, EXTRA_COLUMNS, AnnotationError

_READERS: dict[str, Callable[..., pd.DataFrame]] = {}
_NOT_READERS = {"fixes", "labels"}  # modules of this folder that read no dataset


def register_reader(name: str) -> Callable:
    """Decorator registering ``fn(root, **options) -> DataFrame`` as dataset ``name``."""

    def decorator(fn):
        if name in _READERS:
            raise ValueError(f"register_reader: a reader named {name!r} is already registered")
        _READERS[name] = fn
        return fn

    return decorator


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_") and mod.name not in _NOT_READERS:
            importlib.import_module(f"{__name__}.{mod.name}")


def list_datasets() -> list[str]:
    """Names accepted by :func:`read_dataset`."""
    _load_all()
    return sorted(_READERS)


def read_dataset(name: str, root, **options) -> pd.DataFrame:
    """Read a dataset's annotations and frame lists as distributed.

    Args:
        name: dataset name, one of :func:`list_datasets`.
        root: the dataset's root folder, as unpacked from the official archive.
        **options: reader-specific options (see each reader's docstring).

    Returns:
        One row per clip with the columns of :mod:`kerasmer.data.schema`.

    Raises:
        ValueError: unknown dataset name (closest names suggested).
        AnnotationError: bad input; names the dataset, the file and the row.

    Example:
        >>> df = read_dataset("casme2", "/data/CASME2")  # doctest: +SKIP
    """
    _load_all()
    if name not in _READERS:
        close = difflib.get_close_matches(str(name), list(_READERS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown dataset {name!r}.{hint} Known: {', '.join(sorted(_READERS))}")
    df = _READERS[name](root, **options)
    missing = [c for c in COLUMNS + EXTRA_COLUMNS if c not in df.columns]
    if missing:  # a reader bug, not a user error
        raise RuntimeError(f"reader {name!r} returned no column(s) {missing}")
    return df


__all__ = ["AnnotationError", "list_datasets", "read_dataset", "register_reader"]
