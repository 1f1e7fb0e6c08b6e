"""From annotation rows to model inputs and ``tf.data`` batches.

* :func:`load_clip` decodes a clip's frames (OpenCV) as RGB uint8.
* :func:`build_input` turns one row into one model input for a *modality*
  (``"dynamic_image"``, ``"frame"``, ``"clip"``; more with
  :func:`register_input_builder`), memoized in-process so that leave-one-subject-out
  folds do not decode the same clip again.
* :func:`fit_normalization` gives per-channel mean/std over training rows.
* :func:`make_dataset` builds the ``tf.data.Dataset`` of ``(x, y)`` batches:
  decode → cache → shuffle → augment → normalize → batch → prefetch.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from kerasmer.data.dynamic_image import dynamic_image
from kerasmer.data.schema import AnnotationError

# Counts frame decodes (cv2.imread calls) since import; tests use it to prove caching.
DECODE_STATS = {"frames": 0}
_STATS_LOCK = threading.Lock()
INPUT_BUILDERS: dict[str, Callable] = {}
DEFAULT_AUGMENT = {"flip": True, "rotation": 5.0, "brightness": 0.1}


# ----------------------------------------------------------------- decoding


def _field(row, name):
    try:
        return row[name]
    except (KeyError, IndexError) as err:
        raise KeyError(f"row has no {name!r} field; expected a row of read_dataset()'s DataFrame") from err


def _clip_name(row) -> str:
    try:
        return f"{row['dataset']} {row['subject']}/{row['clip']}"
    except (KeyError, IndexError):
        return "clip"


def decode_frame(path: str, *, dataset: str = "frames") -> np.ndarray:
    """Decode one image file as RGB uint8 (H, W, 3).

    Args:
        path: the image file.
        dataset: dataset name, for the error message.

    Returns:
        The image, RGB uint8.

    Raises:
        AnnotationError: the file is missing or not a readable image; names it.

    Example:
        >>> img = decode_frame("CASME2-RAW/sub01/EP02_01f/img46.jpg")  # doctest: +SKIP
    """
    with _STATS_LOCK:  # frames are decoded from several tf.data threads
        DECODE_STATS["frames"] += 1
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise AnnotationError(dataset, path, "cannot read image (missing or damaged)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_clip(row, *, frames: Sequence[int] | None = None) -> np.ndarray:
    """Decode a clip's frames onset..offset (or the frame numbers given).

    Args:
        row: one row of a reader's DataFrame (Series or dict) with
            ``frame_paths``, ``frame_numbers``, ``onset`` and ``offset``.
        frames: frame numbers to decode, in the order wanted; default every frame
            present from onset to offset.

    Returns:
        uint8 array (T, H, W, 3), RGB.  Frames of another size than the first are
        resized to it.

    Raises:
        AnnotationError: a requested frame number is not among the clip's frames,
            or no frame lies in onset..offset; names the clip.

    Example:
        >>> clip = load_clip(df.iloc[0])  # doctest: +SKIP
        >>> clip.shape  # doctest: +SKIP
        (31, 128, 128, 3)
    """
    paths, numbers = list(_field(row, "frame_paths")), [int(n) for n in _field(row, "frame_numbers")]
    by_number = dict(zip(numbers, paths))
    if frames is None:
        onset, offset = int(_field(row, "onset")), int(_field(row, "offset"))
        frames = [n for n in numbers if onset <= n <= offset]
        if not frames:
            raise AnnotationError(str(row.get("dataset", "?")), _clip_name(row),
                                  f"no frame in onset..offset {onset}..{offset}")
    missing = [int(n) for n in frames if int(n) not in by_number]
    if missing:
        raise AnnotationError(str(row.get("dataset", "?")), _clip_name(row),
                              f"frame number(s) {missing[:5]} not among the clip's frames "
                              f"{numbers[0]}..{numbers[-1]}")
    dataset = str(row.get("dataset", "frames"))
    images = [decode_frame(by_number[int(n)], dataset=dataset) for n in frames]
    h, w = images[0].shape[:2]
    images = [im if im.shape[:2] == (h, w) else cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
              for im in images]
    return np.stack(images)


def _resize(frames: np.ndarray, size, channels: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, h, w, channels) float32, area-interpolated."""
    h, w = int(size[0]), int(size[1])
    out = []
    for f in frames:
        if channels == 1:
            f = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) if f.shape[:2] != (h, w) else f
        out.append(f.reshape(h, w, channels))
    return np.stack(out).astype(np.float32)


def _channels(input_shape) -> int:
    c = int(input_shape[-1])
    if c not in (1, 3):
        raise ValueError(f"input_shape {tuple(input_shape)}: channels must be 1 or 3")
    return c


# ----------------------------------------------------------------- input builders


def register_input_builder(modality: str) -> Callable:
    """Decorator registering ``fn(row, input_shape) -> float32 array`` for ``modality``.

    Example:
        >>> @register_input_builder("onset_apex_diff")  # doctest: +SKIP
        ... def _diff(row, input_shape):
        ...     ...
    """

    def decorator(fn):
        INPUT_BUILDERS[modality] = fn
        return fn

    return decorator


@register_input_builder("dynamic_image")
def _build_dynamic_image(row, input_shape):
    """Dynamic image over onset..offset; input_shape (H, W, C)."""
    if len(input_shape) != 3:
        raise ValueError(f"dynamic_image input_shape must be (H, W, C), got {tuple(input_shape)}")
    # Resizing is linear, so resizing frames first equals resizing the dynamic image, but is cheaper.
    return dynamic_image(_resize(load_clip(row), input_shape[:2], _channels(input_shape)))


def _apex_or_middle(row) -> int:
    apex = row.get("apex") if hasattr(row, "get") else None
    if apex is not None and not pd.isna(apex):
        return int(apex)
    numbers = [n for n in row["frame_numbers"] if int(row["onset"]) <= n <= int(row["offset"])]
    return int(numbers[len(numbers) // 2]) if numbers else int(row["onset"])


@register_input_builder("frame")
def _build_frame(row, input_shape):
    """The apex frame (the middle frame of onset..offset if the apex is missing)."""
    if len(input_shape) != 3:
        raise ValueError(f"frame input_shape must be (H, W, C), got {tuple(input_shape)}")
    return _resize(load_clip(row, frames=[_apex_or_middle(row)]), input_shape[:2], _channels(input_shape))[0]


def sample_frame_numbers(row, num_frames: int) -> list[int]:
    """``num_frames`` frame numbers spread uniformly onset→apex→offset.

    Half of the samples (rounded up, ending at the apex) cover onset..apex and the
    rest apex..offset; onset..offset uniformly if the apex is missing.  One sample
    is the apex (or the middle).  Each is snapped to the nearest frame present.

    Example:
        >>> sample_frame_numbers({"onset": 0, "apex": 4, "offset": 20,
        ...                       "frame_numbers": list(range(21))}, 5)
        [0, 2, 4, 12, 20]
    """
    onset, offset = int(row["onset"]), int(row["offset"])
    apex = row.get("apex")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if apex is None or pd.isna(apex):
        targets = [(onset + offset) / 2] if num_frames == 1 else np.linspace(onset, offset, num_frames)
    elif num_frames < 3:  # too few for both halves: the apex, preceded by the onset
        targets = [int(apex)] if num_frames == 1 else [onset, int(apex)]
    else:
        first = (num_frames + 1) // 2  # includes the apex
        targets = np.concatenate([np.linspace(onset, int(apex), first),
                                  np.linspace(int(apex), offset, num_frames - first + 1)[1:]])
    present = np.asarray([n for n in row["frame_numbers"] if onset <= n <= offset] or list(row["frame_numbers"]))
    return [int(present[np.abs(present - t).argmin()]) for t in targets]


@register_input_builder("clip")
def _build_clip(row, input_shape):
    """T frames sampled onset→apex→offset; input_shape (T, H, W, C)."""
    if len(input_shape) != 4:
        raise ValueError(f"clip input_shape must be (T, H, W, C), got {tuple(input_shape)}")
    frames = load_clip(row, frames=sample_frame_numbers(row, int(input_shape[0])))
    return _resize(frames, input_shape[1:3], _channels(input_shape))


# ----------------------------------------------------------------- memo


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


def clear_input_cache(max_bytes: int | None = None) -> None:
    """Empty the in-process memo of built inputs (and optionally resize it, default 1 GiB)."""
    _CACHE.clear()
    if max_bytes is not None:
        _CACHE.max_bytes = int(max_bytes)


def build_input(row, *, modality: str, input_shape) -> np.ndarray:
    """The model input for one clip, before normalization.

    Args:
        row: one row of a reader's DataFrame.
        modality: a key of ``INPUT_BUILDERS``: ``"dynamic_image"`` (the dynamic
            image over onset..offset, (H, W, C) in [0, 255]), ``"frame"`` (the apex
            frame, or the middle one if the apex is missing, (H, W, C)) or
            ``"clip"`` (T frames sampled onset→apex→offset, (T, H, W, C)).
        input_shape: the model's input shape without batch; C is 1 (grey) or 3.

    Returns:
        float32 array of shape ``input_shape`` (a fresh copy; the memo keeps its own).

    Raises:
        ValueError: unknown modality or bad input_shape.
        AnnotationError: unreadable frames; names the clip.

    Example:
        >>> x = build_input(df.iloc[0], modality="dynamic_image", input_shape=(112, 112, 3))  # doctest: +SKIP
    """
    if modality not in INPUT_BUILDERS:
        raise ValueError(f"unknown modality {modality!r}; known: {sorted(INPUT_BUILDERS)}")
    input_shape = tuple(int(v) for v in input_shape)
    apex = row.get("apex") if hasattr(row, "get") else None
    key = (tuple(_field(row, "frame_paths")), int(_field(row, "onset")),
           None if apex is None or pd.isna(apex) else int(apex), int(_field(row, "offset")), modality, input_shape)
    cached = _CACHE.get(key)
    if cached is None:
        cached = np.asarray(INPUT_BUILDERS[modality](row, input_shape), dtype=np.float32)
        if cached.shape != input_shape:
            raise RuntimeError(f"input builder {modality!r} returned shape {cached.shape}, expected {input_shape}")
        _CACHE.put(key, cached)
    return cached.copy()


def fit_normalization(df: pd.DataFrame, *, modality: str, input_shape) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of the inputs of ``df``'s rows.

    Fit it on the training split only and pass it to the validation/test sets.

    Args:
        df: rows (the training split).
        modality, input_shape: as for :func:`build_input`.

    Returns:
        ``(mean, std)``, float32 arrays of shape (C,); a std below 1e-6 is set to 1.

    Example:
        >>> mean, std = fit_normalization(train_df, modality="dynamic_image", input_shape=(64, 64, 3))  # doctest: +SKIP
    """
    if len(df) == 0:
        raise ValueError("fit_normalization: no rows")
    c = int(input_shape[-1])
    total, total_sq, count = np.zeros(c), np.zeros(c), 0
    for _, row in df.iterrows():
        x = build_input(row, modality=modality, input_shape=input_shape).reshape(-1, c).astype(np.float64)
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
            raise ValueError(f"make_dataset: clip {_clip_name(row)} ({src}) has {label_column} {label!r}, "
                             f"not one of class_names {list(class_names)}")
        y[i, index[label]] = 1.0
    return y


def _augment_fn(settings: Mapping, input_shape, seed: int):
    """Stateless augmentation of one (x, seed) pair; one transform for all frames of a clip."""
    import keras
    import tensorflow as tf

    clip = len(input_shape) == 4
    max_angle = math.radians(float(settings.get("rotation", 0.0)))
    flip, brightness = bool(settings.get("flip", False)), float(settings.get("brightness", 0.0))

    def apply(x, rnd):
        s = tf.stack([tf.cast(rnd, tf.int64), tf.constant(seed, tf.int64)])
        if clip:  # fold T into channels so one transform moves every frame alike
            t, h, w, c = input_shape
            x = tf.reshape(tf.transpose(x, (1, 2, 0, 3)), (h, w, t * c))
        if flip:
            do = tf.random.stateless_uniform((), seed=s + [0, 1]) < 0.5
            x = tf.cond(do, lambda: tf.reverse(x, axis=[1]), lambda: x)
        if max_angle > 0:
            angle = tf.random.stateless_uniform((), seed=s + [0, 2], minval=-max_angle, maxval=max_angle)
            h_f, w_f = tf.cast(tf.shape(x)[0], tf.float32), tf.cast(tf.shape(x)[1], tf.float32)
            cos, sin = tf.cos(angle), tf.sin(angle)
            # output->input map of a rotation about the image centre (keras affine_transform convention)
            cx, cy = (w_f - 1) / 2, (h_f - 1) / 2
            transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                                  sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
            x = keras.ops.image.affine_transform(x[None], transform[None], interpolation="bilinear",
                                                 fill_mode="reflect", data_format="channels_last")[0]
        if brightness > 0:
            delta = tf.random.stateless_uniform((), seed=s + [0, 3], minval=-brightness, maxval=brightness) * 255.0
            x = tf.clip_by_value(x + delta, 0.0, 255.0)
        if clip:
            x = tf.transpose(tf.reshape(x, (h, w, t, c)), (2, 0, 1, 3))
        return x

    return apply


def make_dataset(df: pd.DataFrame, *, modality: str, input_shape, class_names: Sequence[str],
                 label_column: str = "emotion", batch_size: int = 16, training: bool = False, seed: int = 0,
                 augment=None, normalization=None, cache: bool = True):
    """A ``tf.data.Dataset`` of ``(x, y)`` batches for ``df``'s clips.

    Pipeline: build inputs (decode, resize, dynamic image …; parallel, order kept)
    → ``.cache()`` → shuffle (training) → augment → normalize → batch →
    ``prefetch(AUTOTUNE)``.

    Args:
        df: rows of a reader's DataFrame.
        modality, input_shape: as for :func:`build_input`.
        class_names: class order of the one-hot labels.
        label_column: the column holding the labels.
        batch_size: batch size (the last batch may be smaller).
        training: shuffle each epoch (and, by default, augment).
        seed: seed for shuffling and augmentation; same seed, same batches.
        augment: ``None`` = augment iff ``training``; ``True``/``False``; or a dict
            overriding ``DEFAULT_AUGMENT`` (``flip`` bool, ``rotation`` max degrees,
            ``brightness`` max shift as a fraction of 255).  Every frame of a clip
            gets the same transform.
        normalization: ``(mean, std)`` per channel; ``None`` = fit on ``df`` (pass
            the training split's to validation/test sets); ``False`` = none.
        cache: keep decoded inputs in memory after the first epoch.

    Returns:
        ``tf.data.Dataset`` yielding x float32 ``[B, *input_shape]`` and one-hot y
        float32 ``[B, len(class_names)]``.

    Raises:
        ValueError: a label not in ``class_names`` (names the clip), bad modality.

    Example:
        >>> train = make_dataset(train_df, modality="dynamic_image", input_shape=(112, 112, 3),
        ...                      class_names=["negative", "positive", "surprise"], training=True)  # doctest: +SKIP
        >>> norm = fit_normalization(train_df, modality="dynamic_image", input_shape=(112, 112, 3))  # doctest: +SKIP
        >>> test = make_dataset(test_df, ..., normalization=norm)  # doctest: +SKIP
    """
    import tensorflow as tf

    if modality not in INPUT_BUILDERS:
        raise ValueError(f"unknown modality {modality!r}; known: {sorted(INPUT_BUILDERS)}")
    if len(df) == 0:
        raise ValueError("make_dataset: empty DataFrame")
    input_shape = tuple(int(v) for v in input_shape)
    df = df.reset_index(drop=True)
    labels = _one_hot_labels(df, list(class_names), label_column)
    if augment is None:
        augment = training
    settings = dict(DEFAULT_AUGMENT, **augment) if isinstance(augment, Mapping) else (
        DEFAULT_AUGMENT if augment else None)
    if normalization is None:
        normalization = fit_normalization(df, modality=modality, input_shape=input_shape)
    rows = [row for _, row in df.iterrows()]

    def load(i):
        return build_input(rows[int(i)], modality=modality, input_shape=input_shape)

    def load_tf(i):
        x = tf.numpy_function(load, [i], tf.float32, stateful=False)
        x.set_shape(input_shape)
        return x, tf.gather(labels, i)

    ds = tf.data.Dataset.range(len(rows)).map(load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    if settings:
        apply = _augment_fn(settings, input_shape, seed)
        # one fresh random number per element and epoch: deterministic for the seed
        rnd = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rnd)).map(lambda xy, r: (apply(xy[0], r), xy[1]),
                                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if normalization is not False:
        mean = tf.constant(np.asarray(normalization[0], np.float32))
        std = tf.constant(np.asarray(normalization[1], np.float32))
        ds = ds.map(lambda x, y: ((x - mean) / std, y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


__all__ = [
    "DECODE_STATS", "DEFAULT_AUGMENT", "INPUT_BUILDERS", "build_input", "clear_input_cache", "decode_frame",
    "fit_normalization", "load_clip", "make_dataset", "register_input_builder", "sample_frame_numbers",
]
