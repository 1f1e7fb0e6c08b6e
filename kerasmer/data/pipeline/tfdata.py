"""From annotation rows to ``tf.data`` batches: memo, preprocessing cache, normalization, datasets.

* :func:`build_input` turns one row into one model input (built by
  :func:`~kerasmer.data.pipeline.inputs.make_input_builder`), memoized in-process so
  that leave-one-subject-out folds do not decode a clip again and, with
  ``cache_dir``, stored on disk by :class:`~kerasmer.data.pipeline.cache.PreprocessCache`
  so that later runs do not either.
* :func:`fit_normalization` gives per-channel mean/std over training rows.
* :func:`make_dataset` builds the ``tf.data.Dataset`` of ``(x, y)`` batches:
  decode (or read the cache) → cache → shuffle or balance → augment → normalize
  → batch → prefetch.  :func:`~kerasmer.data.pipeline.model_spec.make_dataset_for_model`
  takes the modality, input shape, clip sampler and augmentation from a model's spec.

Decoding and the input builders live in :mod:`kerasmer.data.pipeline.inputs`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from kerasmer.data.pipeline.augment import make_augment, resolve_augment
from kerasmer.data.pipeline.cache import PreprocessCache
from kerasmer.data.pipeline.epochs import (
    BALANCE_CHOICES, class_counts, epoch_draws, seeded_batches,
)
from kerasmer.data.pipeline.inputs import builder_config, clip_label, make_input_builder, row_field


# ----------------------------------------------------------------- memo and disk cache


class _InputCache:
    """Thread-safe LRU of built inputs, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes, self.lock = max_bytes, 0, threading.Lock()
        self.items: OrderedDict = OrderedDict()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value):
        with self.lock:
            if key in self.items or value.nbytes > self.max_bytes:
                return
            self.items[key] = value
            self.bytes += value.nbytes
            while self.bytes > self.max_bytes:
                _, old = self.items.popitem(last=False)
                self.bytes -= old.nbytes

    def clear(self):
        with self.lock:
            self.items.clear()
            self.bytes = 0


_CACHE = _InputCache(1 << 30)
_DISK_CACHES: dict = {}  # directory -> PreprocessCache, so hit/miss counters add up within a process


def clear_input_cache(max_bytes: int | None = None) -> None:
    """Empty the in-process memo of built inputs (and optionally resize it, default 1 GiB); disk caches stay."""
    _CACHE.clear()
    if max_bytes is not None:
        _CACHE.max_bytes = int(max_bytes)


def preprocess_cache(cache_dir, annotation, builder, modality: str):
    """The :class:`~kerasmer.data.pipeline.cache.PreprocessCache` the pipeline uses for a builder under ``cache_dir``.

    Its key is the builder's config (modality, apex, face, sampler, flow
    settings) and the annotation file(s) behind ``annotation`` (a DataFrame's
    ``source`` column); each file's name adds the row's own fields and the input
    shape.  One instance per folder and process, so its ``hits``/``misses`` add up.

    Example:
        >>> pc = preprocess_cache("/tmp/kcache", df, make_input_builder("clip"), "clip")  # doctest: +SKIP
        >>> pc.hits, pc.misses  # doctest: +SKIP
    """
    cache = PreprocessCache(cache_dir, config=builder_config(builder, modality), annotation=annotation)
    return _DISK_CACHES.setdefault(str(cache.directory), cache)


_DECODE_FAILURES: list = []
_DECODE_LOCK = threading.Lock()


def _record_decode_failure(err: Exception) -> None:
    with _DECODE_LOCK:
        _DECODE_FAILURES.append(err)


def _take_decode_failure():
    """The first failure recorded since the last call (None if none); clears the record."""
    with _DECODE_LOCK:
        first = _DECODE_FAILURES[0] if _DECODE_FAILURES else None
        _DECODE_FAILURES.clear()
    return first


@contextlib.contextmanager
def decode_errors_raised():
    """Raise, at the end of the block, an error a ``make_dataset`` pipeline met while decoding inside it.

    A decode error inside ``tf.data`` ends the dataset early instead of raising in TF's
    threads (which aborted the process); wrap ``fit``/``predict`` in this block to get the
    original kerasmer error (an :class:`~kerasmer.data.schema.AnnotationError` naming the frame and
    the clip) in the calling thread, also in place of whatever error the short dataset caused.

    Example:
        >>> with decode_errors_raised():  # doctest: +SKIP
        ...     model.fit(make_dataset(df, ...))
    """
    _take_decode_failure()  # stale failures belong to an earlier, abandoned pipeline
    try:
        yield
    except Exception:
        failure = _take_decode_failure()
        if failure is not None:
            raise failure from None
        raise
    failure = _take_decode_failure()
    if failure is not None:
        raise failure


def _input(row, modality, input_shape, builder, disk) -> np.ndarray:
    """Memo → disk cache → builder; the memo's own array (callers copy if they write)."""
    apex = row.get("apex") if hasattr(row, "get") else None
    key = (tuple(row_field(row, "frame_paths")), int(row_field(row, "onset")),
           None if apex is None or pd.isna(apex) else int(apex), int(row_field(row, "offset")), modality, input_shape,
           json.dumps(builder_config(builder, modality), sort_keys=True, default=str))
    cached = _CACHE.get(key)
    if cached is None:
        build = disk.cached(builder) if disk is not None else builder
        cached = np.asarray(build(row, input_shape), dtype=np.float32)
        if cached.shape != input_shape:
            raise RuntimeError(f"input builder {modality!r} returned shape {cached.shape} for clip "
                               f"{clip_label(row)}, expected {input_shape}")
        _CACHE.put(key, cached)
    return cached


def build_input(row, *, modality: str, input_shape, apex=None, face=None, sampler=None, flow=None,
                cache_dir=None) -> np.ndarray:
    """The model input for one clip, before normalization.

    Args:
        row: one row of a reader's DataFrame.
        modality: ``"dynamic_image"`` (the dynamic image over onset..offset,
            (H, W, C) in [0, 255]), ``"frame"`` (the apex frame, (H, W, C)),
            ``"clip"`` (T sampled frames, (T, H, W, C)), ``"flow"`` ((H, W, 3)
            u, v, strain) or another key of ``INPUT_BUILDERS``.
        input_shape: the model's input shape without batch; C is 1 (grey) or 3.
        apex, face, sampler, flow: preprocessing options, see :func:`make_input_builder`.
        cache_dir: a folder for the on-disk preprocessing cache (see
            :func:`preprocess_cache`); ``None``: in-process memo only.

    Returns:
        float32 array of shape ``input_shape`` (a fresh copy; the memo keeps its own).

    Raises:
        ValueError: unknown modality, bad option or input_shape.
        AnnotationError: unreadable frames; names the clip.

    Example:
        >>> x = build_input(df.iloc[0], modality="dynamic_image", input_shape=(112, 112, 3))  # doctest: +SKIP
        >>> c = build_input(df.iloc[0], modality="clip", input_shape=(16, 112, 112, 3),
        ...                 sampler="centered")  # doctest: +SKIP
    """
    builder = make_input_builder(modality, apex=apex, face=face, sampler=sampler, flow=flow)
    input_shape = tuple(int(v) for v in input_shape)
    disk = None
    if cache_dir is not None:
        disk = preprocess_cache(cache_dir, pd.DataFrame({"source": [row.get("source")]}), builder, modality)
    return _input(row, modality, input_shape, builder, disk).copy()


def fit_normalization(df: pd.DataFrame, *, modality: str, input_shape, apex=None, face=None, sampler=None,
                      flow=None, cache_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of the inputs of ``df``'s rows.

    Fit it on the training split only and pass it to the validation/test sets.

    Args:
        df: rows (the training split).
        modality, input_shape: as for :func:`build_input`.
        apex, face, sampler, flow, cache_dir: as for :func:`build_input`; use the
            same as for :func:`make_dataset`.

    Returns:
        ``(mean, std)``, float32 arrays of shape (C,); a std below 1e-6 is set to 1.

    Example:
        >>> mean, std = fit_normalization(train_df, modality="dynamic_image", input_shape=(64, 64, 3))  # doctest: +SKIP
    """
    if len(df) == 0:
        raise ValueError("fit_normalization: no rows")
    builder = make_input_builder(modality, apex=apex, face=face, sampler=sampler, flow=flow)
    input_shape = tuple(int(v) for v in input_shape)
    disk = preprocess_cache(cache_dir, df, builder, modality) if cache_dir is not None else None
    c = int(input_shape[-1])
    total, total_sq, count = np.zeros(c), np.zeros(c), 0
    for _, row in df.iterrows():
        x = _input(row, modality, input_shape, builder, disk).reshape(-1, c).astype(np.float64)
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        count += x.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


# ----------------------------------------------------------------- tf.data


def _one_hot_labels(df, class_names, label_column) -> np.ndarray:
    if label_column not in df.columns:
        raise KeyError(f"make_dataset: DataFrame has no label column {label_column!r}")
    index = {name: i for i, name in enumerate(class_names)}
    if len(index) != len(class_names):
        raise ValueError(f"make_dataset: class_names has duplicates: {list(class_names)}")
    y = np.zeros((len(df), len(class_names)), np.float32)
    for i, (_, row) in enumerate(df.iterrows()):
        label = row[label_column]
        if label not in index:
            src = row.get("source", "")
            raise ValueError(f"make_dataset: clip {clip_label(row)} ({src}) has {label_column} {label!r}, "
                             f"not one of class_names {list(class_names)}")
        y[i, index[label]] = 1.0
    return y


def make_dataset(df: pd.DataFrame, *, modality: str, input_shape, class_names: Sequence[str],
                 label_column: str = "emotion", batch_size: int = 16, training: bool = False, seed=0,
                 augment=None, normalization=None, cache: bool = True, balance: bool = False, apex=None,
                 face=None, sampler=None, flow=None, cache_dir=None, reuse: dict | None = None):
    """A ``tf.data.Dataset`` of ``(x, y)`` batches for ``df``'s clips.

    Pipeline: build inputs (decode, crop, sample, flow …; parallel, order kept; or read them from
    ``cache_dir``) → ``.cache()`` → shuffle (training) or class-balanced draws (``balance``) → augment →
    normalize → batch → ``prefetch(AUTOTUNE)``, with :func:`pipeline_options` (tf.data's autotuning model
    off).  The same ``seed`` gives the same batches, epoch by epoch.

    Args:
        df: rows of a reader's DataFrame.
        modality, input_shape: as for :func:`build_input`.
        class_names: class order of the one-hot labels.
        label_column: the column holding the labels.
        batch_size: batch size (the last batch may be smaller).
        training: shuffle each epoch (and, by default, augment).
        seed: seed for shuffling, balancing and augmentation; or a sequence of seeds: each seed's epoch in
            turn (the batches of ``make_dataset(seed=s)`` for each ``s``, concatenated), with the augmentation
            traced once, so that one iterator feeds many epochs (:class:`kerasmer.training.feed.EpochFeed`).
        augment: ``None`` = augment iff ``training``; ``True``/``False``; or a dict
            overriding :data:`~kerasmer.data.pipeline.augment.DEFAULT_AUGMENT` (``flip``,
            ``rotation``, ``brightness``, ``contrast``, ``color_shift``,
            ``salt_pepper``; see :mod:`kerasmer.data.pipeline.augment`).  Every frame of a
            clip gets the same geometric and photometric transform; ``"flow"``
            inputs get flip (negating u) and rotation only.
        normalization: ``(mean, std)`` per channel; ``None`` = fit on ``df`` (pass
            the training split's to validation/test sets); ``False`` = none.
        cache: keep built inputs in memory after the first epoch (tf.data ``.cache()``;
            with ``balance`` the in-process memo of :func:`build_input` does that job).
        balance: (training only) draw classes equally often, in seeded blocks of
            one clip per class, each class's clips cycling reshuffled.  ``True``
            (``"epoch"``): ``len(df)`` draws per epoch; ``"oversample"``: every
            class as often as the largest (:func:`epoch_draws`).
        apex, face, sampler, flow: preprocessing options, see :func:`make_input_builder`.
        cache_dir: folder of the on-disk preprocessing cache (see
            :func:`preprocess_cache`): inputs missing there are built first, then
            all are read from the ``.npy`` files with TensorFlow ops.
        reuse: a dict the caller keeps between calls on the same rows and options (e.g. one per fold and
            part, for a dataset per epoch): the labels, the source, its filled ``.cache()`` and the traced
            augmentation are kept in it, so a later call only draws the new seed's order and transforms
            (the same batches as without it).  ``None``: everything is built anew.

    Returns:
        ``tf.data.Dataset`` yielding x float32 ``[B, *input_shape]`` and one-hot y
        float32 ``[B, len(class_names)]``.

    Raises:
        ValueError: a label not in ``class_names`` (names the clip), bad modality
            or option, ``balance`` without ``training``.

    Example:
        >>> train = make_dataset(train_df, modality="dynamic_image", input_shape=(112, 112, 3),
        ...                      class_names=["negative", "positive", "surprise"], training=True,
        ...                      balance=True, cache_dir="~/.cache/kerasmer")  # doctest: +SKIP
        >>> norm = fit_normalization(train_df, modality="dynamic_image", input_shape=(112, 112, 3))  # doctest: +SKIP
        >>> test = make_dataset(test_df, ..., normalization=norm)  # doctest: +SKIP
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    builder = make_input_builder(modality, apex=apex, face=face, sampler=sampler, flow=flow)
    if len(df) == 0:
        raise ValueError("make_dataset: empty DataFrame")
    draws = epoch_draws(class_counts(df, list(class_names), label_column), balance)
    if balance and not training:
        raise ValueError(f"make_dataset: balance={balance!r} is for training sets (training=True); "
                         "evaluate on the clips as they are")
    input_shape = tuple(int(v) for v in input_shape)
    df = df.reset_index(drop=True)
    settings = resolve_augment(augment, training)
    if normalization is None:
        normalization = fit_normalization(df, modality=modality, input_shape=input_shape, apex=apex, face=face,
                                          sampler=sampler, flow=flow, cache_dir=cache_dir)
    user_keys = tuple(augment) if isinstance(augment, Mapping) else ()
    fixed = _fixed_parts(df, reuse, class_names=list(class_names), label_column=label_column, modality=modality,
                         input_shape=input_shape, builder=builder, cache_dir=cache_dir, cache=cache,
                         balance=balance, settings=settings, user_keys=user_keys, normalization=normalization)
    return seeded_batches(fixed, seed, draws=draws, training=training, balance=balance,
                          batch_size=batch_size).prefetch(tf.data.AUTOTUNE).with_options(pipeline_options())


def pipeline_options():
    """The ``tf.data.Options`` of kerasmer's datasets: tf.data's autotuning model off.

    Why: with it on (TensorFlow's default), deleting an iterator waits until the autotuning thread's
    current sleep ends, and that sleep doubles from 10 ms.  Every ``fit``, ``evaluate`` and ``predict``
    call deletes its iterators, and kerasmer runs one ``fit`` per epoch, so an epoch's wall time snapped
    up to 10 ms x (2^k - 1): a 6 s loop over a dataset ended after 10.2 s, a 22 s one after 41 s, and
    12-step ``fit`` calls of a 3D ResNet took 5.11 s with it against 4.3-4.8 s without.  Without the
    model, ``num_parallel_calls=AUTOTUNE`` runs as many calls as TensorFlow's thread pool has threads
    and ``prefetch(AUTOTUNE)`` sizes its buffer by TensorFlow's simpler prefetch autotuner; in
    ``benchmarks/bench_pipeline.py`` the augmented pipeline ran 4% faster so for the dynamic-image and
    clip inputs and 2% slower on flow, within the rounds' spread (docs/benchmarks.md).

    Returns:
        ``tf.data.Options`` to pass to ``Dataset.with_options``.

    Example:
        >>> ds = ds.with_options(pipeline_options())  # doctest: +SKIP
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _fixed_parts(df: pd.DataFrame, reuse: dict | None, *, class_names: list, label_column: str, modality: str,
                 input_shape: tuple, builder, cache_dir, cache: bool, balance, settings, user_keys,
                 normalization) -> dict:
    """The parts of a pipeline that no seed changes: labels, the source, the (cached) inputs, the augmentation.

    Built anew unless ``reuse`` holds parts built from the same rows, labels and options: then a new epoch's
    dataset keeps the filled ``.cache()`` and the traced augmentation, and only draws its order and transforms.

    Args:
        df: the rows (index reset), their labels in ``label_column``.
        reuse: a dict the caller keeps between calls (e.g. one per fold and part), or None.
        class_names, label_column, modality, input_shape, builder, cache_dir, cache, balance: as in
            :func:`make_dataset` (``builder`` from :func:`make_input_builder`).
        settings, user_keys: the resolved augmentation (None: none) and the keys the caller set.
        normalization: ``(mean, std)`` or False (none).

    Returns:
        ``{"key", "labels", "source", "inputs", "augment", "normalize"}``: ``inputs`` is the whole set in row
        order, normalised unless augmented (None with ``balance``); ``augment`` is ``fn(x, rnd, seed)``
        (augmentation, then normalisation) or None; ``normalize`` is ``fn(x)`` or None.

    Example:
        >>> parts = {}  # kept by the caller: the second make_dataset(..., reuse=parts) reuses the first's
        >>> ds = make_dataset(train_df, ..., training=True, seed=1, reuse=parts)  # doctest: +SKIP
    """
    key = (tuple(df.get("subject", df.index).astype(str)), tuple(df.get("clip", df.index).astype(str)),
           tuple(df[label_column].astype(str)), tuple(class_names), modality, input_shape, str(cache_dir),
           json.dumps(builder_config(builder, modality), sort_keys=True, default=str), bool(cache), str(balance),
           json.dumps(settings, sort_keys=True, default=str), tuple(user_keys),
           None if normalization is False else tuple(np.asarray(v, np.float32).tobytes() for v in normalization))
    if reuse is not None and reuse.get("key") == key:
        return reuse
    import tensorflow as tf  # heavy: loads only when a dataset is built

    labels = _one_hot_labels(df, class_names, label_column)
    normalize = _normalizer(normalization, input_shape)
    augment_fn = _seeded_augment(settings, input_shape, modality, user_keys, normalize) if settings else None
    disk = preprocess_cache(cache_dir, df, builder, modality) if cache_dir is not None else None
    source = _source(df, labels, modality, input_shape, builder, disk)
    inputs = None if balance else source(np.arange(len(df)), cache)
    if inputs is not None and augment_fn is None and normalize is not None:
        # elementwise, so it may come before the shuffle: the same values, and no map to trace per epoch
        inputs = inputs.map(lambda x, y: (normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True)
    parts = {"key": key, "labels": labels, "source": source, "augment": augment_fn, "normalize": normalize,
             "inputs": inputs}
    if reuse is not None:
        reuse.clear()
        reuse.update(parts)
    return parts


def _seeded_augment(settings: dict, input_shape: tuple, modality: str, user_keys, normalize=None):
    """``fn(x, rnd, seed)``: :func:`make_augment`'s transform traced once, the seed an input, so epochs share it.

    Args:
        settings, input_shape, modality, user_keys: as for :func:`~kerasmer.data.pipeline.augment.make_augment`.
        normalize: ``fn(x)`` applied after the augmentation (:func:`_normalizer`), or None.

    Returns:
        A ``tf.function`` of (x float32 ``input_shape``, rnd int64, seed int64); for an int seed its outputs
        are those of ``normalize(make_augment(settings, input_shape, seed, modality, user_keys)(x, rnd))``.

    Raises:
        ValueError: bad settings for the modality (from ``make_augment``), when called, before any data is read.

    Example:
        >>> fn = _seeded_augment(resolve_augment(True, True), (32, 32, 3), "frame", ())  # doctest: +SKIP
        >>> y = fn(x, tf.constant(7, tf.int64), tf.constant(0, tf.int64))  # doctest: +SKIP
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    make_augment(settings, input_shape, 0, modality, user_keys)  # its checks raise here, not inside a trace
    scalar = tf.TensorSpec((), tf.int64)

    @tf.function(input_signature=(tf.TensorSpec(input_shape, tf.float32), scalar, scalar))
    def fn(x, rnd, seed):
        x = make_augment(settings, input_shape, seed, modality, user_keys)(x, rnd)
        return x if normalize is None else normalize(x)

    return fn


def _normalizer(normalization, input_shape: tuple):
    """``fn(x) = (x - mean) / std`` per channel, traced once (None when ``normalization`` is False).

    Args:
        normalization: ``(mean, std)``, arrays of shape (C,), or False.
        input_shape: the input shape without batch.

    Returns:
        A ``tf.function`` of one float32 input of ``input_shape``, or None.

    Example:
        >>> fn = _normalizer((np.zeros(3), np.ones(3)), (8, 8, 3))  # doctest: +SKIP
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    if normalization is False:
        return None
    mean = tf.constant(np.asarray(normalization[0], np.float32))
    std = tf.constant(np.asarray(normalization[1], np.float32))

    @tf.function(input_signature=(tf.TensorSpec(input_shape, tf.float32),))
    def fn(x):
        return (x - mean) / std

    return fn


def _source(df: pd.DataFrame, labels: np.ndarray, modality: str, input_shape: tuple, builder, disk):
    """``source(idx, keep)``: the ``(x, y)`` dataset of rows ``idx`` in that order; ``keep``: ``.cache()`` it."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    rows = [row for _, row in df.iterrows()]

    def load(i):
        # An exception raised here, inside TF's parallel-map threads, aborted or hung the process
        # (issue 11): record it, return a marker, and let the dataset end; decode_errors_raised re-raises it.
        try:
            return _input(rows[int(i)], modality, input_shape, builder, None).copy(), np.bool_(True)
        except Exception as err:  # noqa: BLE001 - nothing may escape into TF's thread pool
            _record_decode_failure(err)
            return np.zeros(input_shape, np.float32), np.bool_(False)

    def load_tf(i):
        x, ok = tf.numpy_function(load, [i], (tf.float32, tf.bool), stateful=False)
        x.set_shape(input_shape)
        return x, tf.gather(labels, i), ok

    def source(idx: np.ndarray, keep: bool):
        if disk is not None:  # read by TF ops: parallel reads, no Python (GIL) per element
            xs = disk.dataset(df.iloc[idx], builder, input_shape)
            ds = tf.data.Dataset.zip((xs, tf.data.Dataset.from_tensor_slices(labels[idx])))
        else:
            ds = tf.data.Dataset.from_tensor_slices(idx.astype(np.int64)).map(
                load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            # a marker ends the data; one lambda per line, or AutoGraph cannot find their source and warns
            ds = ds.take_while(lambda x, y, ok: ok)
            ds = ds.map(lambda x, y, ok: (x, y))
            # take_while hides the length from Keras (which then warns "ran out of data" every epoch); a
            # dataset cut short by a decode error fails this assertion, and decode_errors_raised names the frame.
            ds = ds.apply(tf.data.experimental.assert_cardinality(len(idx)))
        return ds.cache() if keep else ds

    return source


__all__ = [
    "BALANCE_CHOICES", "build_input", "clear_input_cache", "decode_errors_raised", "epoch_draws",
    "fit_normalization", "make_dataset", "preprocess_cache",
]
