"""From a video (or a folder of frames) to micro-expression predictions: decode, track, spot, recognise.

:func:`run_video` does the work and returns a :class:`VideoResult` (predictions, the motion curve, the
no-face stretches, the time of each stage); :func:`predict_video` also writes the outputs
(:mod:`kerasmer.inference.outputs`) and returns the predictions as a DataFrame.  ``kerasmer predict`` is
a thin wrapper around :func:`predict_video`.

Every check that can fail fast runs before the long pass over the frames: the input is readable and has a
frame rate, the model is a kerasmer model with a modality that can be built from frames, a face is found on
frames sampled across the video, and a given interval lies inside the video.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
import pandas as pd

from kerasmer.data.preprocess import spotting as spot
from kerasmer.inference.model import ServedModel, load_served_model
from kerasmer.inference.outputs import write_outputs
from kerasmer.inference.recognise import classify, interval_input
from kerasmer.inference.source import FrameSource, InferenceError, open_source
from kerasmer.inference.tracking import FaceTracker, FaceWindow, probe_face

STAGES = ("decode", "face", "spotting", "recognition")
BASE_COLUMNS = ["onset", "apex", "offset", "onset_s", "offset_s", "label", "score"]


@dataclass
class VideoResult:
    """Everything :func:`run_video` found.

    Attributes:
        predictions: one row per interval: ``onset, apex, offset`` (frames of the video), ``onset_s, offset_s``,
            ``label``, ``score`` (the label's probability), ``spot_score`` (the motion curve's peak; NaN for
            a given interval) and one ``prob_<class>`` column per class.
        curve: ``(frames,)`` motion curve, NaN where no face was tracked (or where it was not computed).
        threshold: ``(frames,)`` MEGC threshold of each window, NaN elsewhere.
        fps: the video's frame rate.
        windows: ``{"start", "stop", "box"}`` of each tracked window (one crop each).
        no_face: ``(start, stop)`` frame ranges without a face.
        timings: seconds per stage (``decode_s``, ``face_s``, ``spotting_s``, ``recognition_s``, ``load_model_s``),
            ``frames``, and ``frames_per_s`` per stage.
        source: the checked input.
        model: the served model.
    """

    predictions: pd.DataFrame
    curve: np.ndarray
    threshold: np.ndarray
    fps: float
    windows: list[dict]
    no_face: list[tuple[int, int]]
    timings: dict
    source: FrameSource
    model: ServedModel = field(repr=False)


def parse_interval(interval) -> tuple[int, int, int]:
    """``"ONSET:APEX:OFFSET"`` (or a 3-sequence) as three frame indices with ``0 <= onset <= apex <= offset``.

    Example:
        >>> parse_interval("10:25:60")
        (10, 25, 60)
    """
    parts = interval.split(":") if isinstance(interval, str) else list(interval)
    try:
        onset, apex, offset = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise InferenceError(f"--interval {interval!r}: expected ONSET:APEX:OFFSET, three frame numbers") from None
    if not 0 <= onset <= apex <= offset:
        raise InferenceError(f"--interval {interval!r}: need 0 <= onset <= apex <= offset")
    return onset, apex, offset


class FrameProgress:
    """A progress bar over frames with an ETA: ``keras.utils.Progbar`` on a terminal, a line per 10 % otherwise."""

    def __init__(self, total: int, *, enabled: bool = True, log: Callable = print):
        self.total, self.enabled, self.log = max(int(total), 1), enabled, log
        self.bar = keras.utils.Progbar(self.total, unit_name="frame") if enabled and sys.stdout.isatty() else None
        self.t0, self.next_share = time.perf_counter(), 0.1

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(min(done, self.total))
        elif self.enabled and done / self.total >= self.next_share:
            elapsed = time.perf_counter() - self.t0
            eta = elapsed * max(self.total - done, 0) / max(done, 1)
            self.log(f"frames {done}/{self.total} ({done / self.total:.0%}), {elapsed:.0f} s, ETA {eta:.0f} s")
            self.next_share = np.floor(done / self.total * 10 + 1) / 10

    def close(self, done: int) -> None:
        if self.bar is not None:
            self.bar.target = max(done, 1)  # the container's count is an estimate for some codecs
            self.bar.update(done, finalize=True)


def _decode_and_track(src: FrameSource, tracker: FaceTracker, progress: FrameProgress) -> tuple[int, float, float]:
    """One pass over the frames: decode each and hand it to the tracker; ``(frames, decode s, face s)``."""
    frames, n, t_decode, t_face = src.frames(), 0, 0.0, 0.0
    while True:
        t = time.perf_counter()
        frame = next(frames, None)
        t_decode += time.perf_counter() - t
        if frame is None:
            break
        t = time.perf_counter()
        tracker.feed(n, frame)
        t_face += time.perf_counter() - t
        n += 1
        if n % 10 == 0:
            progress.update(n)
    progress.close(n)
    return n, t_decode, t_face


def _spot(windows: list[FaceWindow], n: int, fps: float, options: dict, log: Callable):
    """Motion curve and intervals of every window: ``(curve, threshold, [(window, SpottedInterval)])``."""
    curve, threshold, found = np.full(n, np.nan), np.full(n, np.nan), []
    curve_params = set(inspect.signature(spot.motion_curve).parameters) - {"frames", "fps"}
    curve_opts = {k: v for k, v in options.items() if k in curve_params}
    p = options.get("p", inspect.signature(spot.spot_intervals).parameters["p"].default)
    shortest = 2 * int(curve_opts.get("k") or spot.default_k(fps)) + 1
    for w in windows:
        if len(w.crops) < shortest:
            log(f"frames {w.start}..{w.stop - 1}: a tracked stretch of {len(w.crops)} frames is too short to spot "
                f"in (< {shortest}); skipped")
            continue
        c = spot.motion_curve(w.crops, fps, **curve_opts)
        curve[w.start:w.stop] = c
        threshold[w.start:w.stop] = spot.megc_threshold(c, p)
        found += [(w, iv) for iv in spot.spot_intervals(w.crops, fps, curve=c, **options)]
    return curve, threshold, found


def _given_interval(windows: list[FaceWindow], interval, n: int, path) -> list:
    onset, apex, offset = interval
    if offset >= n:
        raise InferenceError(f"{path}: --interval {onset}:{apex}:{offset} ends after the last frame ({n - 1})")
    for w in windows:
        if w.start <= onset and offset < w.stop:
            return [(w, (onset - w.start, apex - w.start, offset - w.start, float("nan")))]
    raise InferenceError(f"{path}: --interval {onset}:{apex}:{offset} is not inside one tracked face window "
                         f"(windows: {[(w.start, w.stop - 1) for w in windows]}); the face was lost or moved in it")


def _recognise(found: list, served: ServedModel, fps: float, path) -> pd.DataFrame:
    """Classify each ``(window, (onset, apex, offset, spot score))`` with window-relative frames."""
    inputs, rows = [], []
    for w, (onset, apex, offset, spot_score) in found:
        start = w.start
        inputs.append(interval_input(w.crops, int(onset), int(apex), int(offset), served, fps,
                                     clip_id=f"{path} frames {start + onset}..{start + offset}"))
        rows.append({"onset": start + int(onset), "apex": start + int(apex), "offset": start + int(offset),
                     "onset_s": (start + onset) / fps, "offset_s": (start + offset) / fps,
                     "spot_score": float(spot_score)})
    probs = classify(inputs, served)
    for row, p in zip(rows, probs):
        row["label"] = served.class_names[int(np.argmax(p))]
        row["score"] = float(np.max(p))
        row.update({f"prob_{c}": float(v) for c, v in zip(served.class_names, p)})
    columns = BASE_COLUMNS + ["spot_score"] + [f"prob_{c}" for c in served.class_names]
    df = pd.DataFrame(rows, columns=columns)
    # typed even when empty, so that callers can compute on a video without intervals
    return df.astype({c: "int64" if c in ("onset", "apex", "offset") else "float64"
                      for c in columns if c != "label"})


def _prepare(input, model, *, fps, interval, face, tracking, log):
    """The checks that can fail fast, then the source, model, tracker and interval."""
    t = time.perf_counter()
    src = open_source(input, fps=fps)
    interval = parse_interval(interval) if interval is not None else None
    if interval is not None and 0 < src.num_frames <= interval[2]:  # a video's count is the container's
        raise InferenceError(f"{src.path}: --interval ends at frame {interval[2]}, after the last frame "
                             f"({src.num_frames - 1})")
    served = model if isinstance(model, ServedModel) else load_served_model(model)
    load_s = time.perf_counter() - t
    tracker = FaceTracker(face, fps=src.fps, **(tracking or {}))
    if tracker.cropper is not None and not probe_face(src, tracker.cropper):
        raise InferenceError(f"{src.path}: no face found by the {face!r} detector on frames sampled across the "
                             "video (use --face none if the frames are already face crops)")
    log(f"{src.path}: {src.kind}, ~{src.num_frames} frames at {src.fps:g} fps; model {served.name} "
        f"({served.modality} {tuple(served.input_shape)}, clips resampled to {served.fps:g} fps)")
    if served.kind == "keras" and served.normalization is None:
        log(f"{served.path}: no normalisation stored with this .keras model (no {served.path.name}.json, not in a "
            "run directory): its inputs are fed unnormalised")
    return src, served, tracker, interval, load_s


def run_video(input: str | os.PathLike, model, *, fps: float | None = None, interval=None, face: str | None = "haar",
              spotting: dict | None = None, tracking: dict | None = None, progress: bool = True,
              log: Callable = print) -> VideoResult:
    """Spot and recognise the micro-expressions of a video.

    Args:
        input: a video file OpenCV reads, or a folder of frame images.
        model: an exported ``saved_models/<name>[/<version>]``, a ``.keras`` file, or a
            :class:`~kerasmer.inference.model.ServedModel`.
        fps: frames per second; overrides the container's; required for a folder.
        interval: ``(onset, apex, offset)`` or ``"ONSET:APEX:OFFSET"`` frames: recognise this one, skip spotting.
        face: ``"haar"`` (default), ``"mtcnn"``, or ``None`` for frames that are already face crops.
        spotting: options of :func:`~kerasmer.data.preprocess.spotting.spot_intervals` (``p``,
            ``max_duration_s``, ...) and of ``motion_curve`` (``k``, ``mask_eyes``, ...).
        tracking: options of :class:`~kerasmer.inference.tracking.FaceTracker` (``redetect_s``, ``drift``, ...).
        progress: show a progress bar over frames.
        log: where one-line messages go (``print``; ``lambda s: None`` to silence).

    Returns:
        A :class:`VideoResult`.

    Raises:
        InferenceError: bad input (one line naming the file and what is wrong), before the long pass.

    Example:
        >>> result = run_video("s01.avi", "saved_models/learnet")  # doctest: +SKIP
        >>> result.predictions[["onset", "offset", "label", "score"]]  # doctest: +SKIP
    """
    src, served, tracker, interval, load_s = _prepare(input, model, fps=fps, interval=interval, face=face,
                                                      tracking=tracking, log=log)
    n, t_decode, t_face = _decode_and_track(src, tracker, FrameProgress(src.num_frames, enabled=progress, log=log))
    if n == 0:
        raise InferenceError(f"{src.path}: no frame could be decoded")
    windows, no_face = tracker.finish()
    for start, stop in no_face:
        log(f"{src.path}: no face in frames {start}..{stop - 1} ({start / src.fps:.2f}-{stop / src.fps:.2f} s)")
    if not windows:
        raise InferenceError(f"{src.path}: no face found by the {face!r} detector in any of its {n} frames")
    t = time.perf_counter()
    if interval is None:
        curve, threshold, found = _spot(windows, n, src.fps, dict(spotting or {}), log)
        found = [(w, tuple(iv)) for w, iv in found]
    else:
        curve, threshold = np.full(n, np.nan), np.full(n, np.nan)
        found = _given_interval(windows, interval, n, src.path)
    t_spot = time.perf_counter() - t
    t = time.perf_counter()
    predictions = _recognise(found, served, src.fps, src.path)
    t_recog = time.perf_counter() - t
    timings = _timings(n, {"decode": t_decode, "face": t_face, "spotting": t_spot, "recognition": t_recog},
                       load_s, tracker.detections, len(found))
    log(f"{src.path}: {len(predictions)} interval(s) in {n} frames; " + ", ".join(
        f"{k} {timings[f'{k}_s']:.1f} s" for k in STAGES))
    return VideoResult(predictions, curve, threshold, src.fps,
                       [{"start": w.start, "stop": w.stop, "box": w.box} for w in windows], no_face, timings,
                       src, served)


def _timings(n: int, stages: dict, load_s: float, detections: int, intervals: int) -> dict:
    out = {"frames": int(n), "intervals": int(intervals), "face_detections": int(detections),
           "load_model_s": float(load_s)}
    out.update({f"{k}_s": float(v) for k, v in stages.items()})
    out["total_s"] = float(sum(stages.values()) + load_s)
    out["frames_per_s"] = {k: (n / v if v > 0 else None) for k, v in stages.items()}
    return out


def predict_video(input: str | os.PathLike, model, *, out: str | os.PathLike | None = None, fps: float | None = None,
                  interval=None, face: str | None = "haar", video_out: bool = False, spotting: dict | None = None,
                  tracking: dict | None = None, progress: bool = True, log: Callable = print) -> pd.DataFrame:
    """Spot and recognise a video's micro-expressions; write the outputs to ``out`` if given.

    Args:
        input, model, fps, interval, face, spotting, tracking, progress, log: as for :func:`run_video`.
        out: directory for ``predictions.csv``/``.json``, ``timings.json``, ``motion_curve.png``
            (:func:`kerasmer.inference.outputs.write_outputs`).
        video_out: also write ``annotated.avi`` (needs ``out``).

    Returns:
        The predictions (see :attr:`VideoResult.predictions`); ``attrs["timings"]`` holds the time split and
        ``attrs["no_face"]`` the frame ranges without a face.

    Raises:
        InferenceError: bad input, before the long pass.
        ValueError: ``video_out`` without ``out``.

    Example:
        >>> df = predict_video("s01.avi", "saved_models/learnet", out="pred")  # doctest: +SKIP
        >>> df[["onset_s", "offset_s", "label", "score"]]  # doctest: +SKIP
    """
    if video_out and out is None:
        raise ValueError("predict_video: video_out=True needs out=DIR to write the annotated video to")
    result = run_video(input, model, fps=fps, interval=interval, face=face, spotting=spotting, tracking=tracking,
                       progress=progress, log=log)
    if out is not None:
        paths = write_outputs(result, out, video_out=video_out)
        log(f"wrote {', '.join(p.name for p in paths.values())} to {out}")
    df = result.predictions
    df.attrs.update(timings=result.timings, no_face=[list(s) for s in result.no_face])
    return df


__all__ = ["BASE_COLUMNS", "FrameProgress", "STAGES", "VideoResult", "parse_interval", "predict_video", "run_video"]
