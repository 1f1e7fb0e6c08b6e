"""Model inputs from annotation rows: decoding, and the input builder of each modality.

* :func:`load_clip` decodes a clip's frames (OpenCV) as RGB uint8.
* :func:`make_input_builder` makes the builder ``fn(row, input_shape)`` of a
  modality (``"dynamic_image"``, ``"frame"``, ``"clip"``, ``"flow"``; more with
  :func:`register_input_builder`) with the preprocessing options: which apex
  (:func:`~kerasmer.data.preprocess.apex.resolve_apex`), face cropping
  (:class:`~kerasmer.data.preprocess.face.FaceCropper`) and, for clips, the temporal
  sampler (:mod:`kerasmer.data.preprocess.samplers`).  Its ``config`` keys the
  preprocessing cache.

:mod:`kerasmer.data.pipeline` memoizes, caches and batches what these build.
"""

from __future__ import annotations

import json
import threading
import warnings
from typing import Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from kerasmer.data.preprocess import samplers
from kerasmer.data.preprocess._frames import clip_name, read_frames
from kerasmer.data.preprocess.apex import clip_span, resolve_apex
from kerasmer.data.preprocess.dynamic_image import dynamic_image
from kerasmer.data.preprocess.face import FaceCropper, NoFaceError, apply_crop
from kerasmer.data.preprocess.flow import FLOW_METHODS, flow_input
from kerasmer.data.preflight import decode_strict
from kerasmer.data.schema import AnnotationError

# Counts frame decodes (cv2.imread calls) since import; tests use it to prove caching.
DECODE_STATS = {"frames": 0}
_STATS_LOCK = threading.Lock()
_FACE_LOCK = threading.Lock()
INPUT_BUILDERS: dict[str, Callable] = {}
APEX_CHOICES = (None, "annotated", "spotted", "middle")
SAMPLER_CHOICES = ("uniform", "apex_middle", "centered", "interpolate")


# ----------------------------------------------------------------- decoding


def row_field(row, name):
    try:
        return row[name]
    except (KeyError, IndexError) as err:
        raise KeyError(f"row has no {name!r} field; expected a row of read_dataset()'s DataFrame") from err


def clip_label(row) -> str:
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
    # strict: a truncated JPEG is refused, not decoded half grey with only a libjpeg warning (issue 11)
    img = decode_strict(path, dataset=dataset, flags=cv2.IMREAD_COLOR)
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
    paths, numbers = list(row_field(row, "frame_paths")), [int(n) for n in row_field(row, "frame_numbers")]
    by_number = dict(zip(numbers, paths))
    if frames is None:
        onset, offset = int(row_field(row, "onset")), int(row_field(row, "offset"))
        frames = [n for n in numbers if onset <= n <= offset]
        if not frames:
            raise AnnotationError(str(row.get("dataset", "?")), clip_label(row),
                                  f"no frame in onset..offset {onset}..{offset}")
        if len(frames) != offset - onset + 1:  # a missing frame is an error, never silently skipped (issue 11)
            frames = list(range(onset, offset + 1))
    missing = [int(n) for n in frames if int(n) not in by_number]
    if missing:
        raise AnnotationError(str(row.get("dataset", "?")), clip_label(row),
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

    Give ``fn`` a ``config`` attribute (a JSON-able dict of its settings) if it
    will be used with ``cache_dir``; otherwise its module and name key the cache.

    Example:
        >>> @register_input_builder("onset_apex_diff")  # doctest: +SKIP
        ... def _diff(row, input_shape):
        ...     ...
    """

    def decorator(fn):
        INPUT_BUILDERS[modality] = fn
        return fn

    return decorator


def _present_numbers(row) -> list[int]:
    """Frame numbers present in onset..offset, in order (what the samplers index)."""
    onset, offset = int(row_field(row, "onset")), int(row_field(row, "offset"))
    numbers = [int(n) for n in row_field(row, "frame_numbers") if onset <= int(n) <= offset]
    if not numbers:
        raise AnnotationError(str(row.get("dataset", "?")), clip_label(row),
                              f"no frame in onset..offset {onset}..{offset}")
    return numbers


def _apex_position(row, numbers: list[int], apex) -> int:
    """Apex position in ``numbers``: ``None`` = annotated if any, else the middle; else ``resolve_apex``."""
    if apex is None:
        value = row.get("apex") if hasattr(row, "get") else None
        if value is not None and not pd.isna(value):
            return int(np.abs(np.asarray(numbers) - int(value)).argmin())
        return len(numbers) // 2
    return resolve_apex(row, apex)


def sample_frame_numbers(row, num_frames: int) -> list[int]:
    """``num_frames`` frame numbers onset→apex→offset, by :func:`kerasmer.data.preprocess.samplers.sample_uniform`.

    The samples index the frames present in onset..offset; onset, apex and offset
    are among them and the rest are shared between the rise and the fall in
    proportion to their lengths.  Without an apex, the middle frame stands in.

    Example:
        >>> sample_frame_numbers({"onset": 0, "apex": 4, "offset": 20,
        ...                       "frame_numbers": list(range(21))}, 5)
        [0, 4, 9, 15, 20]
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    numbers = _present_numbers(row)
    return [numbers[i] for i in samplers.sample_uniform(len(numbers), _apex_position(row, numbers, None), n=num_frames)]


def _decode(row, numbers: Sequence[int], face) -> np.ndarray:
    """RGB uint8 frames ``numbers`` (each decoded once), face-cropped with one detection on the onset frame."""
    need = list(dict.fromkeys(int(n) for n in numbers))
    if face is not None:  # detect on the onset frame, as the flow builder does, whatever frames are sampled
        onset = _present_numbers(row)[0]
        need = [onset] + [n for n in need if n != onset]
    frames = load_clip(row, frames=need)
    if face is not None:
        with _FACE_LOCK:  # tf.data calls builders from several threads; one detector object is shared
            frames = face.crop_clip(frames, clip_id=clip_label(row))
    where = {n: i for i, n in enumerate(need)}
    return frames[[where[int(n)] for n in numbers]]


def _check_rank(modality, input_shape, rank):
    if len(input_shape) != rank:
        dims = "(T, H, W, C)" if rank == 4 else "(H, W, C)"
        raise ValueError(f"{modality} input_shape must be {dims}, got {tuple(input_shape)}")


def frame_positions(modality: str, sampler: str | None, length: int, apex: int, input_shape,
                    *, clip_id: str | None = None) -> list[int]:
    """Which of a clip's ``length`` frames (onset..offset) a built-in image modality reads, in order.

    Args:
        modality: ``"frame"``, ``"clip"`` or ``"dynamic_image"``.
        sampler: the clip sampler (``"uniform"``, ``"apex_middle"``, ``"centered"``, ``"interpolate"``).
        length: frames from onset to offset.
        apex: the apex position in 0..length-1.
        input_shape: the model input shape (its first axis is T for clips).
        clip_id: named in errors.

    Returns:
        Positions in 0..length-1 (repeats allowed, as samplers repeat frames of short clips).

    Example:
        >>> frame_positions("clip", "uniform", 21, 4, (5, 32, 32, 3))
        [0, 4, 9, 15, 20]
    """
    if modality == "frame":
        return [int(apex)]
    if modality == "dynamic_image" or sampler == "interpolate":
        return list(range(length))
    return [int(i) for i in samplers.sample_indices(sampler, length, apex, n=int(input_shape[0]), clip_id=clip_id)]


def assemble_input(frames: np.ndarray, modality: str, input_shape, *, sampler: str | None = None,
                   clip_id: str | None = None) -> np.ndarray:
    """The model input from the RGB uint8 frames that :func:`frame_positions` picked.

    Resizing is linear, so resizing frames before rank pooling equals resizing the dynamic image, and is cheaper.
    """
    shape = tuple(input_shape)
    x = _resize(frames, shape[-3:-1], _channels(shape))
    if modality == "dynamic_image":
        return dynamic_image(x)
    if modality == "frame":
        return x[0]
    if sampler == "interpolate":
        return samplers.interpolate(x, shape[0], clip_id=clip_id)
    return x


def _builtin(modality: str, apex, face, sampler) -> Callable:
    """The builder of a built-in image modality with these options."""

    def build(row, input_shape):
        shape = tuple(input_shape)
        _check_rank(modality, shape, 4 if modality == "clip" else 3)
        _channels(shape)
        numbers = _present_numbers(row)
        pos = len(numbers) // 2 if modality == "dynamic_image" else _apex_position(row, numbers, apex)
        picks = frame_positions(modality, sampler, len(numbers), pos, shape, clip_id=clip_label(row))
        frames = _decode(row, [numbers[i] for i in picks], face)
        return assemble_input(frames, modality, shape, sampler=sampler, clip_id=clip_label(row))

    build.config = {"modality": modality, "face": face.config() if face is not None else None}
    if modality != "dynamic_image":  # it uses every frame: the apex does not matter
        build.config["apex"] = apex
    if modality == "clip":
        build.config["sampler"] = sampler
    build.__name__ = build.__qualname__ = f"build_{modality}"
    return build


# ----------------------------------------------------------------- the flow builder


def make_flow_builder(
    *,
    method: str = "farneback",
    apex: str = "annotated",
    face=None,
    work_size: int = 112,
    normalize: str = "clip",
    remove_global: bool = False,
):
    """A ``"flow"`` input builder ``fn(row, input_shape) -> (H, W, 3) array`` for the pipeline.

    It reads only the onset and apex frames (all frames when the apex is
    spotted), crops the face if asked (detected on the onset frame, the same
    crop for both), computes the flow at ``work_size`` or the input size,
    whichever is larger, and resizes it to ``input_shape``.

    Args:
        method: flow method, see :func:`~kerasmer.data.preprocess.flow.optical_flow`.
        apex: ``"annotated"``, ``"spotted"`` or ``"middle"``, see
            :func:`kerasmer.data.preprocess.apex.resolve_apex`.
        face: ``None`` (frames are already cropped, as in the datasets'
            cropped releases), a detector name (``"haar"``) or a
            :class:`~kerasmer.data.preprocess.face.FaceCropper`.
        work_size: shorter side the flow is computed at; small model inputs
            (28 x 28 for STSTNet) would make sub-pixel movements invisible.
        normalize, remove_global: see :func:`~kerasmer.data.preprocess.flow.flow_input`.

    Returns:
        The builder; its ``config`` attribute is a JSON-friendly dict of the
        settings (use it in the preprocessing-cache key).

    Example:
        >>> build = make_flow_builder(method="dis", face="haar")
        >>> x = build(df.iloc[0], (112, 112, 3))  # doctest: +SKIP
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"make_flow_builder: method must be one of {FLOW_METHODS}, got {method!r}")
    if apex not in ("annotated", "spotted", "middle"):
        raise ValueError(f"make_flow_builder: apex must be 'annotated', 'spotted' or 'middle', got {apex!r}")
    if isinstance(face, str):
        face = FaceCropper(face, size=None)
    elif face is not None and not isinstance(face, FaceCropper):
        raise TypeError("make_flow_builder: face must be None, a detector name or a FaceCropper, "
                        f"got {type(face).__name__}")

    def build_flow(row, input_shape) -> np.ndarray:
        name = clip_name(row)
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[-1] != 3:
            raise ValueError(f"clip {name}: the 'flow' input is (H, W, 3) (u, v, strain); got input_shape {shape}")
        span = clip_span(row)
        paths = list(row["frame_paths"])
        if apex == "spotted":
            clip = read_frames(paths[span.start : span.stop + 1], gray=True, clip_id=name)
            rel = resolve_apex(row, "spotted", frames=clip, method=method)
            pair = clip[[0, rel]]
        else:
            rel = resolve_apex(row, apex)
            pair = read_frames([paths[span.start], paths[span.start + rel]], gray=True, clip_id=name)
        if rel == 0:
            # Flow between a frame and itself is ~0.1 px of solver noise, which
            # normalisation would blow up to full range: return the true answer.
            warnings.warn(f"clip {name}: the apex is the onset frame, so its flow input is all zeros", stacklevel=2)
            return np.zeros(shape, np.float32)
        if face is not None:
            pair = _crop_pair(face, pair, paths[span.start : span.stop + 1], name)
        return flow_from_pair(pair, shape, method=method, work_size=work_size, normalize=normalize,
                              remove_global=remove_global)

    face_cfg = face.config() if face is not None else None
    build_flow.config = {"modality": "flow", "method": method, "apex": apex, "face": face_cfg,
                         "work_size": work_size, "normalize": normalize, "remove_global": remove_global}
    return build_flow


def flow_from_pair(pair, input_shape, *, method: str = "farneback", work_size: int = 112,
                   normalize: str = "clip", remove_global: bool = False) -> np.ndarray:
    """The ``(u, v, strain)`` input from grey uint8 onset and apex frames (the flow builder's last step).

    The flow is computed at ``work_size`` or the input size, whichever is larger (small inputs would make
    sub-pixel movements invisible), then resized to ``input_shape``.
    """
    h, w = tuple(input_shape)[:2]
    k = max(1.0, work_size / min(h, w))
    work = (round(h * k), round(w * k))
    pair = [cv2.resize(f, (work[1], work[0]), interpolation=cv2.INTER_AREA) for f in pair]
    return flow_input(pair[0], pair[1], method=method, size=(h, w), normalize=normalize,
                      remove_global=remove_global)


def _rgb_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise TypeError(f"input_from_frames: frames must be uint8, got {frames.dtype}")
    if frames.ndim == 3:  # grey (T, H, W): the builders read RGB, as load_clip gives
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"input_from_frames: frames must be (T, H, W) or (T, H, W, 3) with T >= 1, "
                         f"got shape {frames.shape}")
    return frames


def input_from_frames(frames, modality: str, input_shape, *, apex: int | None = None, sampler: str | None = None,
                      flow: dict | None = None, clip_id: str | None = None) -> np.ndarray:
    """A model input from a clip held in memory: its face-cropped frames from onset to offset.

    This is the computation the row builders of :func:`make_input_builder` run after decoding and cropping, so
    ``kerasmer predict`` and the serving tests feed a model exactly what training fed it.

    Args:
        frames: ``(T, H, W, 3)`` RGB or ``(T, H, W)`` grey uint8, onset..offset, already face crops.
        modality: ``"frame"``, ``"clip"``, ``"dynamic_image"`` or ``"flow"``.
        input_shape: the model's input shape without the batch axis.
        apex: the apex position in 0..T-1; ``None`` takes the middle frame, as training does for a clip
            without an annotated apex.
        sampler: for clips, as in :func:`make_input_builder` (default ``"uniform"``).
        flow: for ``"flow"``, :func:`flow_from_pair` options.
        clip_id: named in errors.

    Returns:
        The float32 model input.

    Example:
        >>> x = input_from_frames(np.zeros((9, 64, 64, 3), np.uint8), "dynamic_image", (32, 32, 3))
        >>> x.shape
        (32, 32, 3)
    """
    frames, shape = _rgb_frames(frames), tuple(int(d) for d in input_shape)
    apex = len(frames) // 2 if apex is None else int(apex)
    if not 0 <= apex < len(frames):
        raise ValueError(f"input_from_frames: apex {apex} is outside the clip's {len(frames)} frames")
    if modality == "flow":
        grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[[0, apex]]])
        if apex == 0:
            return np.zeros(shape, np.float32)
        return flow_from_pair(grey, shape, **(flow or {}))
    if modality not in ("frame", "clip", "dynamic_image"):
        raise ValueError(f"input_from_frames: modality {modality!r} is not built in; known: frame, clip, "
                         "dynamic_image, flow")
    _check_rank(modality, shape, 4 if modality == "clip" else 3)
    sampler = sampler or "uniform"
    picks = frame_positions(modality, sampler, len(frames), apex, shape, clip_id=clip_id)
    return assemble_input(frames[picks], modality, shape, sampler=sampler, clip_id=clip_id)


def _crop_pair(face, pair, clip_paths, name):
    """Crop onset and apex with one detection; search the whole clip only if neither has a face."""
    try:
        return face.crop_clip(pair, clip_id=name)
    except NoFaceError:
        _, det = face.find_face(read_frames(clip_paths, gray=True, clip_id=name), clip_id=name)
        m, out = face.crop_matrix(det)
        return apply_crop(pair, m, out)


flow_builder = make_flow_builder()
"""The default ``"flow"`` builder: Farneback, annotated apex, frames used as given."""


# ----------------------------------------------------------------- builders by modality

_BUILDERS: dict = {}  # (modality, options) -> builder, so a FaceCropper's detector loads once
_BUILTINS: dict[str, Callable] = {}


def make_input_builder(modality: str, *, apex=None, face=None, sampler=None, flow=None) -> Callable:
    """The input builder ``fn(row, input_shape) -> array`` of a modality with preprocessing options.

    Args:
        modality: ``"frame"`` (the apex frame, (H, W, C)), ``"clip"`` (T sampled
            frames, (T, H, W, C)), ``"dynamic_image"`` (over onset..offset, (H, W, C)),
            ``"flow"`` ((u, v, strain) onset→apex, (H, W, 3)) or a modality
            registered with :func:`register_input_builder` (no options then).
        apex: ``None`` (the annotated apex, or the middle frame where there is
            none; ``"annotated"`` for flow), or ``"annotated"``, ``"spotted"``,
            ``"middle"`` (:func:`~kerasmer.data.preprocess.apex.resolve_apex`).  Not used by
            ``"dynamic_image"``.
        face: ``None`` (frames are already face crops, as the synthetic set and
            CASME II's ``Cropped/``), ``"haar"``/``"mtcnn"`` or a
            :class:`~kerasmer.data.preprocess.face.FaceCropper`; one detection per clip, on
            the onset frame.
        sampler: for ``"clip"``: ``"uniform"`` (default; onset→apex→offset),
            ``"apex_middle"`` (onset→apex, the apex at T // 2, apex→offset: the shallow models),
            ``"centered"`` (T consecutive frames around the apex, MERANet) or
            ``"interpolate"`` (all frames onset..offset linearly resampled to T).
        flow: for ``"flow"``: options of :func:`make_flow_builder`
            (``method``, ``work_size``, ``normalize``, ``remove_global``).

    Returns:
        The builder; its ``config`` attribute (JSON values) keys the preprocessing cache.

    Raises:
        ValueError: unknown modality, or an option that does not apply to it (named).

    Example:
        >>> build = make_input_builder("clip", sampler="centered", apex="spotted")
        >>> build.config["sampler"]
        'centered'
    """
    if modality not in INPUT_BUILDERS:
        raise ValueError(f"unknown modality {modality!r}; known: {sorted(INPUT_BUILDERS)}")
    if apex not in APEX_CHOICES:
        raise ValueError(f"apex must be one of {APEX_CHOICES}, got {apex!r}")
    if sampler is not None and modality != "clip":
        raise ValueError(f"sampler={sampler!r} applies to modality 'clip' only, not {modality!r}")
    if sampler is not None and sampler not in SAMPLER_CHOICES:
        raise ValueError(f"sampler must be one of {SAMPLER_CHOICES}, got {sampler!r}")
    if flow is not None and modality != "flow":
        raise ValueError(f"flow={flow!r} options apply to modality 'flow' only, not {modality!r}")
    if flow is not None and not isinstance(flow, dict):
        raise TypeError(f"flow must be a dict of make_flow_builder options, got {type(flow).__name__}")
    if face is not None and not isinstance(face, (str, FaceCropper)):
        raise TypeError(f"face must be None, 'haar', 'mtcnn' or a FaceCropper, got {type(face).__name__}")
    registered = INPUT_BUILDERS[modality]
    if registered is not _BUILTINS.get(modality):  # a custom (or replaced) builder takes no options
        if (apex, face, sampler, flow) != (None, None, None, None):
            raise ValueError(f"modality {modality!r} has a custom builder; apex/face/sampler/flow options "
                             "apply to the built-in 'frame', 'clip', 'dynamic_image' and 'flow' only")
        return registered
    key = (modality, apex, face if isinstance(face, str) or face is None else id(face), sampler,
           json.dumps(flow, sort_keys=True))
    if key not in _BUILDERS:
        if modality == "flow":
            builder = make_flow_builder(apex=apex or "annotated", face=face, **(flow or {}))
        else:
            if isinstance(face, str):  # load_clip gives RGB frames
                face = FaceCropper(face, size=None, color="rgb")
            builder = _builtin(modality, apex, face, sampler or "uniform")
        _BUILDERS[key] = (face, builder)  # keep the FaceCropper alive so its id is not reused
    return _BUILDERS[key][1]


def _register_builtins():
    for modality in ("dynamic_image", "frame", "clip"):
        INPUT_BUILDERS[modality] = _BUILTINS[modality] = _builtin(modality, None, None,
                                                                  "uniform" if modality == "clip" else None)
    INPUT_BUILDERS["flow"] = _BUILTINS["flow"] = flow_builder
    for modality, builder in _BUILTINS.items():  # the defaults are the registered builders themselves
        _BUILDERS[(modality, None, None, None, "null")] = (None, builder)


_register_builtins()


def builder_config(builder, modality) -> dict:
    config = getattr(builder, "config", None)
    if config is None:  # a custom builder without settings: its name stands in
        config = {"builder": f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', '?')}"}
    return {"modality": modality, **config}


__all__ = [
    "APEX_CHOICES", "DECODE_STATS", "INPUT_BUILDERS", "SAMPLER_CHOICES", "assemble_input", "decode_frame",
    "flow_builder", "flow_from_pair", "frame_positions", "input_from_frames", "load_clip", "make_flow_builder",
    "make_input_builder", "register_input_builder", "sample_frame_numbers",
]
