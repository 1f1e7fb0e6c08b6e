"""Preprocessing cache: decode, crop, sample and compute flow once per (dataset, config).

Every model input of a clip (a cropped, sampled clip; a flow image; a dynamic
image) is stored as one ``.npy`` file under ::

    <root>/<namespace>/<dataset>__<subject>__<clip>__<row key>.npy
    <root>/<namespace>/meta.json        # the config and annotation files, for people

``namespace`` is a hash of

* the preprocessing config (a JSON-able dict: modality, input shape, flow
  method, face detector, sampler, ...), the cache format and kerasmer's version;
* the *content* of the annotation file(s) the rows were read from (the
  ``source`` column), so an edited spreadsheet gets a new namespace;

and ``row key`` hashes the row's own onset/apex/offset and frame files, so a
row changed in memory (annotation fixes) is recomputed too.  Folds of a
cross-validation and later runs with the same config reuse the files.  Writes
go to a temporary file in the same folder and are renamed into place, so an
interrupted run or two processes writing at once never leave a half-written
file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from kerasmer import __version__  # set first thing in kerasmer/__init__.py, before any subpackage loads
from kerasmer.core.atomic import atomic_write
from kerasmer.data.preprocess._frames import clip_name

CACHE_FORMAT = 1
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _jsonable(value, path: str):
    """``value`` with tuples as lists and numpy scalars as Python ones; error naming ``path`` otherwise."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"PreprocessCache: config key {path}.{k!r} must be a string")
            out[k] = _jsonable(v, f"{path}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # A function or object would hash by its repr: different every run (never a hit) or
    # the same after its code changed (a stale hit).  Ask for its settings instead.
    raise TypeError(
        f"PreprocessCache: config value at {path} is a {type(value).__name__}; the config must hold only "
        "JSON values (str, int, float, bool, None, lists, dicts): give the settings, e.g. FaceCropper.config()"
    )


def config_digest(config: dict) -> str:
    """SHA-256 of a preprocessing config's canonical JSON (key order does not matter).

    Example:
        >>> config_digest({"a": 1, "b": (2, 3)}) == config_digest({"b": [2, 3], "a": 1})
        True
    """
    if not isinstance(config, dict):
        raise TypeError(f"PreprocessCache: config must be a dict, got {type(config).__name__}")
    text = json.dumps(_jsonable(config, "config"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def annotation_files(annotation) -> list[str]:
    """The annotation file(s) behind ``annotation``: a path, a list of paths, or a DataFrame's ``source`` column."""
    if isinstance(annotation, pd.DataFrame):
        if "source" not in annotation.columns:
            raise ValueError("PreprocessCache: the annotation DataFrame has no 'source' column naming its file")
        files = {str(s).rpartition(":row")[0] or str(s) for s in annotation["source"].dropna()}
        return sorted(f.strip() for f in files if f.strip())
    if isinstance(annotation, (str, os.PathLike)):
        return [str(annotation)]
    return sorted(str(a) for a in annotation)


def annotation_digest(annotation) -> str:
    """SHA-256 over the content of the annotation file(s) (see :func:`annotation_files`).

    Raises:
        FileNotFoundError: an annotation file does not exist (named).
    """
    h = hashlib.sha256()
    files = annotation_files(annotation)
    if not files:
        raise ValueError("PreprocessCache: no annotation file given (empty DataFrame or list)")
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"PreprocessCache: annotation file {f} does not exist; "
                                    "the cache key needs its content")
        h.update(Path(f).name.encode())
        h.update(file_digest(f).encode())
    return h.hexdigest()


def row_digest(row) -> str:
    """Hash of the parts of an annotation row that decide its preprocessed input."""
    get = row.get
    def plain(v):
        if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
            return None
        return v.item() if isinstance(v, np.generic) else v
    fields = {k: plain(get(k)) for k in ("dataset", "subject", "clip", "onset", "apex", "offset", "apex_missing")}
    fields["frame_paths"] = [str(p) for p in (get("frame_paths") if get("frame_paths") is not None else [])]
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


class PreprocessCache:
    """Per-clip preprocessed arrays on disk, keyed by config and annotation content.

    Args:
        root: cache folder (created); one sub-folder per namespace.
        config: the preprocessing settings (JSON values only), e.g.
            ``{"modality": "flow", "input_shape": [112, 112, 3], **builder.config}``.
        annotation: the annotation file path(s), or the DataFrame read from
            them (its ``source`` column names the files).

    Attributes:
        hits, misses, writes, corrupt: counters since construction.
        namespace: the hash naming this config's sub-folder.
        directory: ``root / namespace``.

    Example:
        >>> cache = PreprocessCache("~/.cache/kerasmer", config={"modality": "flow"}, annotation=df)  # doctest: +SKIP
        >>> x = cache.get_or_compute(row, lambda: flow_builder(row, (112, 112, 3)))  # doctest: +SKIP
        >>> build = cache.cached(flow_builder); x = build(row, (112, 112, 3))     # doctest: +SKIP
    """

    def __init__(self, root, *, config: dict, annotation):
        self.root = Path(root).expanduser()
        self.config = _jsonable(config, "config")
        self.annotation_files = annotation_files(annotation)
        key = {"format": CACHE_FORMAT, "kerasmer": __version__, "config": config_digest(self.config),
               "annotation": annotation_digest(annotation)}
        self.namespace = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        self.directory = self.root / self.namespace
        self.hits = self.misses = self.writes = self.corrupt = 0
        self._lock = threading.Lock()
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = self.directory / "meta.json"
        if not meta.exists():
            text = json.dumps({"format": CACHE_FORMAT, "kerasmer": __version__, "config": self.config,
                               "annotation_files": self.annotation_files}, indent=2, sort_keys=True)
            atomic_write(meta, lambda f: f.write(text.encode()), fsync=False)

    def __repr__(self) -> str:
        return (f"PreprocessCache({str(self.directory)!r}, hits={self.hits}, misses={self.misses}, "
                f"writes={self.writes})")

    def path(self, row, extra=None) -> Path:
        """The ``.npy`` file of a row (and an optional JSON-able ``extra`` key, e.g. the input shape)."""
        digest = row_digest(row)
        if extra is not None:
            digest = hashlib.sha256((digest + config_digest({"extra": extra})).encode()).hexdigest()
        parts = [_SAFE.sub("-", str(row.get(k, "x")))[:40] for k in ("dataset", "subject", "clip")]
        return self.directory / ("__".join(parts) + f"__{digest[:16]}.npy")

    def has(self, row, extra=None) -> bool:
        """Whether a row (with ``extra``, e.g. ``{"input_shape": [...]}`` for :meth:`cached`) is cached."""
        return self.path(row, extra).is_file()

    def load(self, row, extra=None) -> np.ndarray:
        """The cached array of a row; ``KeyError`` naming the clip if it is not cached."""
        p = self.path(row, extra)
        try:
            return np.load(p, allow_pickle=False)
        except FileNotFoundError:
            raise KeyError(f"clip {clip_name(row)} is not in the cache {self.directory}") from None

    def get_or_compute(self, row, compute: Callable[[], np.ndarray], extra=None) -> np.ndarray:
        """The cached array of a row, computing and storing it on a miss.

        Args:
            row: annotation row.
            compute: ``() -> np.ndarray`` run on a miss.
            extra: more JSON-able key parts (the input shape, a sampler's n).

        Returns:
            The array (as loaded from disk on a hit, as computed on a miss).

        Raises:
            TypeError: ``compute`` returned no numeric array (names the clip).
        """
        p = self.path(row, extra)
        if p.is_file():
            try:
                arr = np.load(p, allow_pickle=False)
            except (ValueError, OSError, EOFError) as err:
                # e.g. a file truncated by a full disk; recompute rather than train on garbage
                warnings.warn(f"clip {clip_name(row)}: unreadable cache file {p} ({err}); recomputing", stacklevel=2)
                with self._lock:
                    self.corrupt += 1
            else:
                with self._lock:
                    self.hits += 1
                return arr
        with self._lock:
            self.misses += 1
        arr = compute()
        if not isinstance(arr, np.ndarray) or arr.dtype == object:
            raise TypeError(f"clip {clip_name(row)}: the preprocessing returned {type(arr).__name__}, "
                            "not a numeric numpy array; the cache stores only those")
        atomic_write(p, lambda f: np.save(f, np.ascontiguousarray(arr), allow_pickle=False), fsync=False)
        with self._lock:
            self.writes += 1
        return arr

    def cached(self, builder: Callable) -> Callable:
        """Wrap an input builder ``fn(row, input_shape)`` so it reads from / fills this cache.

        Example:
            >>> build = cache.cached(flow_builder)  # doctest: +SKIP
        """

        def cached_builder(row, input_shape):
            shape = [int(s) for s in input_shape]
            return self.get_or_compute(row, lambda: builder(row, tuple(shape)), extra={"input_shape": shape})

        cached_builder.config = getattr(builder, "config", None)
        cached_builder.__wrapped__ = builder
        return cached_builder

    def warm(self, df: pd.DataFrame, builder: Callable, input_shape) -> int:
        """Fill the cache for every row of ``df`` with ``builder(row, input_shape)``; returns the rows computed."""
        before = self.misses
        build = self.cached(builder)
        for _, row in df.iterrows():
            build(row, input_shape)
        return self.misses - before

    def dataset(self, df: pd.DataFrame, builder: Callable, input_shape):
        """A ``tf.data.Dataset`` of the cached inputs of ``df``'s rows, in order, read by TensorFlow ops.

        Missing entries are computed first (with ``builder``, as :meth:`cached`).
        The files are then read with ``tf.io.read_file`` and ``tf.io.decode_raw``
        past each ``.npy`` header, so parallel reads are not serialised by
        Python's GIL the way ``tf.numpy_function`` calls are.  Files already
        there are only opened for their header here (they count as neither
        hits nor misses); files with an unreadable header are recomputed.

        Args:
            df: annotation rows.
            builder: input builder ``fn(row, input_shape)``.
            input_shape: the model input shape without batch.

        Returns:
            Dataset of float32 tensors of ``input_shape``; zip it with the labels.

        Example:
            >>> xs = cache.dataset(train_df, flow_builder, (112, 112, 3))  # doctest: +SKIP
            >>> ds = tf.data.Dataset.zip((xs, labels)).shuffle(256).batch(16)  # doctest: +SKIP
        """
        import tensorflow as tf  # heavy: loads only when a dataset is built

        shape = [int(s) for s in input_shape]
        extra = {"input_shape": shape}
        build = self.cached(builder)
        paths, offsets, dtypes = [], [], set()
        for _, row in df.iterrows():
            p = self.path(row, extra)
            if not p.is_file():
                build(row, shape)
            header = _npy_header(p)
            if header is None:  # unreadable: recompute through the checking path
                p.unlink(missing_ok=True)
                build(row, shape)
                header = _npy_header(p)
            offset, stored_shape, dtype = header
            if list(stored_shape) != shape:
                raise ValueError(f"clip {clip_name(row)}: cached input has shape {stored_shape}, "
                                 f"expected {tuple(shape)}")
            paths.append(str(p))
            offsets.append(offset)
            dtypes.add(dtype)
        if len(dtypes) > 1:
            raise ValueError(f"PreprocessCache.dataset: cached inputs have mixed dtypes {sorted(map(str, dtypes))}")
        dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        tf_dtype = tf.as_dtype(dtype.newbyteorder("="))
        nbytes = int(np.prod(shape)) * dtype.itemsize

        def read(path, offset):
            raw = tf.strings.substr(tf.io.read_file(path), offset, nbytes)
            x = tf.io.decode_raw(raw, tf_dtype, little_endian=dtype.byteorder != ">")
            return tf.cast(tf.reshape(x, shape), tf.float32)

        ds = tf.data.Dataset.from_tensor_slices((paths, np.asarray(offsets, np.int32)))
        return ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def files(self) -> list[Path]:
        """The ``.npy`` files of this namespace."""
        return sorted(self.directory.glob("*.npy"))

    def other_namespaces(self) -> list[Path]:
        """Sibling namespace folders under ``root`` (older configs or annotation versions)."""
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p != self.directory
                      and (p / "meta.json").is_file())


def _npy_header(path: Path):
    """``(data offset, shape, dtype)`` of a C-ordered ``.npy`` file, or ``None`` if unreadable."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
        size = path.stat().st_size
    except (OSError, ValueError, EOFError):
        return None
    if fortran or dtype.hasobject or size < offset + int(np.prod(shape)) * dtype.itemsize:
        return None
    return offset, tuple(shape), dtype


__all__ = ["CACHE_FORMAT", "PreprocessCache", "annotation_digest", "annotation_files", "config_digest",
           "file_digest", "row_digest"]
