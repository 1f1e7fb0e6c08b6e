"""Synthetic long videos with ground truth, for micro-expression spotting.

:func:`make_synthetic_video` films one synthetic subject (the faces of
:mod:`kerasmer.data.synthetic.generate`) for tens of seconds.  The video holds
several micro-expressions at known times and the distractors a spotter must not
report:

=============== ============================ ==========================================
kind            what happens                  why a spotter must ignore it
=============== ============================ ==========================================
``micro``       AUs of a class rise to an     the events to spot (0.2–0.45 s, onset to
                apex and are gone by offset   offset: real micro-expressions last ≤ 0.5 s)
``blink``       both upper lids close         eye motion, not an expression
``head_turn``   the whole head moves to a     rigid motion (translation + rotation)
                new resting pose
``macro``       the same AUs, 2.5× larger,    a macro-expression (1.2–2.5 s) is longer
                and slow                      than any micro-expression
=============== ============================ ==========================================

Events never overlap, and all the while the head drifts and trembles slightly
and the camera adds noise.  Beside the video a CSV (same stem, ``.csv``) lists
every event: ``video, kind, distractor, onset, apex, offset, label, aus, fps``,
frames counted from 0 in the video.  The micro rows (``distractor == 0``) are the
ground truth that :mod:`kerasmer.evaluation.spotting` scores against.

Example:
    >>> from kerasmer.data import make_synthetic_video
    >>> video = make_synthetic_video("/tmp/long/s01.avi", seconds=20, seed=1)  # doctest: +SKIP
    >>> truth = pd.read_csv(video.with_suffix(".csv"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kerasmer.core.atomic import atomic_directory, atomic_write_text
from kerasmer.data.synthetic.generate import (
    EXPRESSION_AUS, _au_displacements, _intensity, _render, _subject_params,
)

TRUTH_COLUMNS = ("video", "kind", "distractor", "onset", "apex", "offset", "label", "aus", "fps")
MICRO_SECONDS = (0.2, 0.45)   # onset..offset of a micro-expression (all ≤ 0.5 s)
MACRO_SECONDS = (1.2, 2.5)
BLINK_SECONDS = (0.15, 0.3)
TURN_SECONDS = (0.3, 0.7)
_GAP_S = 0.4      # at least this much stillness between two events
_EDGE_S = 0.5     # and before the first / after the last
_VIDEO_SUFFIXES = {".avi": "MJPG"}  # Motion-JPEG in AVI: OpenCV headless writes and reads it everywhere


def _event_counts(seconds: float, n_micro, blinks, head_turns, macro) -> dict:
    """Default event counts for a video of ``seconds``: about one micro-expression per 5 s."""
    per = lambda every, lo: max(lo, int(round(seconds / every)))  # noqa: E731
    return {"micro": per(5.0, 1) if n_micro is None else int(n_micro),
            "blink": per(4.0, 1) if blinks is None else int(blinks),
            "head_turn": per(8.0, 1) if head_turns is None else int(head_turns),
            "macro": per(15.0, 0) if macro is None else int(macro)}


def _schedule(rng, counts: dict, seconds: float, fps: float, classes) -> list[dict]:
    """Random non-overlapping events: kind, label, onset/apex/offset frames."""
    spans = {"micro": MICRO_SECONDS, "macro": MACRO_SECONDS, "blink": BLINK_SECONDS, "head_turn": TURN_SECONDS}
    n_events = sum(counts.values())
    fixed = 2 * _EDGE_S + _GAP_S * max(n_events - 1, 0)
    longest = fixed + sum(spans[kind][1] * n for kind, n in counts.items())
    if seconds < longest:  # checked on the longest durations, so whether it fits never depends on the seed
        raise ValueError(f"make_synthetic_video: {n_events} events ({counts}) do not fit in {seconds} s (they "
                         f"may need {longest:.1f} s); make the video longer or ask for fewer events")
    events = [{"kind": kind, "dur": rng.uniform(*spans[kind])} for kind in counts for _ in range(counts[kind])]
    events = [events[i] for i in rng.permutation(len(events))]
    slack = seconds - fixed - sum(e["dur"] for e in events)
    gaps = rng.dirichlet(np.ones(len(events) + 1)) * slack if events else np.zeros(1)
    t, labels = _EDGE_S + gaps[0], list(classes)
    for i, e in enumerate(events):
        onset, offset = int(round(t * fps)), int(round((t + e["dur"]) * fps))
        offset = max(offset, onset + 2)
        e.update(onset=onset, offset=offset, label="", aus="")
        e["apex"] = onset + int(np.clip(round((offset - onset) * rng.uniform(0.3, 0.6)), 1, offset - onset - 1))
        if e["kind"] in ("micro", "macro"):
            e["label"] = labels[int(rng.integers(len(labels)))]
            e["aus"] = "+".join(map(str, EXPRESSION_AUS[e["label"]]))
        t += e["dur"] + _GAP_S + gaps[i + 1]
    return events


def _event_tracks(rng, events: list[dict], p: dict, n: int, amplitude: float, head_motion: float):
    """Per-frame displacement dicts' weights and head-turn pose offsets of all events."""
    keys = _au_displacements((), 0.0).keys()
    disp = {k: np.zeros(n) for k in keys}          # summed d * intensity; _render's drawing is linear in both
    turn = np.zeros((3, n))                         # dx, dy, angle added by head turns
    pose = np.zeros(3)
    for e in events:
        k = _intensity(n, e["onset"], e["apex"], e["offset"])
        if e["kind"] == "head_turn":
            target = np.array([rng.choice([-1, 1]) * rng.uniform(2, 5) * p["s"], rng.uniform(-1.5, 1.5) * p["s"],
                               rng.choice([-1, 1]) * rng.uniform(1.5, 4.0)]) * head_motion
            u = np.clip((np.arange(n) - e["onset"]) / max(e["offset"] - e["onset"], 1), 0, 1)
            step = u * u * (3 - 2 * u)               # smooth move from the old resting pose to the new one
            turn += (target - pose)[:, None] * step[None]
            pose = target
            continue
        if e["kind"] == "blink":
            d = dict.fromkeys(keys, 0.0)
            d["lid_dy"] = 1.8 * p["eye_h"]           # lids down to a slit (the ellipse keeps 10 % of its height)
        else:
            scale = 2.5 if e["kind"] == "macro" else 1.0
            amp = scale * amplitude * p["s"] * p["style"] * rng.uniform(0.75, 1.25)
            d = _au_displacements(EXPRESSION_AUS[e["label"]], amp)
        for key in keys:
            disp[key] += d[key] * k
    return disp, turn


def _jitter(rng, p: dict, n: int, fps: float, head_motion: float) -> np.ndarray:
    """Slow head drift and tremor, about a pixel (as in the synthetic set's clips): ``(3, n)`` dx, dy, angle."""
    tt = np.arange(n) / fps
    ph = rng.uniform(0, 2 * np.pi, 3)
    drift = 0.4 * p["s"] * np.stack([np.sin(2 * np.pi * 0.3 * tt + ph[0]), np.sin(2 * np.pi * 0.2 * tt + ph[1])])
    tremor = rng.normal(0, 0.1 * p["s"], (2, n))
    rot = 0.3 * np.sin(2 * np.pi * 0.25 * tt + ph[2]) + rng.normal(0, 0.05, n)
    return head_motion * np.vstack([drift + tremor, rot[None]])


def _frames(rng, p, events, n, fps, amplitude, head_motion):
    """Yield the video's BGR frames one at a time (the whole video never sits in memory)."""
    disp, turn = _event_tracks(rng, events, p, n, amplitude, head_motion)
    pose = _jitter(rng, p, n, fps, head_motion) + turn
    noise_rng = np.random.default_rng(rng.integers(2**63))
    keys = list(disp)
    for i in range(n):
        d = {k: float(disp[k][i]) for k in keys}
        yield _render(p, d, 1.0, (pose[0, i], pose[1, i], pose[2, i], 1.0), noise_rng)


def _write_video(path: Path, frames, fps: float, size) -> int:
    """Write frames to ``path`` (MJPG .avi) or, for a suffix-less path, a folder of JPEGs; the frame count."""
    h, w = size
    if not path.suffix:
        with atomic_directory(path) as tmp:
            count = 0
            for count, frame in enumerate(frames, 1):
                cv2.imwrite(str(tmp / f"img{count - 1:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        return count
    path.parent.mkdir(parents=True, exist_ok=True)
    # OpenCV picks the container from the suffix, so the temporary name keeps it (core.atomic's would not).
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*_VIDEO_SUFFIXES[path.suffix.lower()]), fps, (w, h))
    try:
        if not writer.isOpened():
            raise OSError(f"make_synthetic_video: OpenCV cannot open a video writer for {path}")
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
        count = 0
        for count, frame in enumerate(frames, 1):
            writer.write(frame)
        writer.release()
        os.replace(tmp, path)
    finally:
        writer.release()
        tmp.unlink(missing_ok=True)
    return count


def _check_args(path: Path, seconds, fps, size, classes, amplitude, head_motion, noise) -> tuple:
    if path.suffix and path.suffix.lower() not in _VIDEO_SUFFIXES:
        raise ValueError(f"make_synthetic_video: {path}: write a {' or '.join(_VIDEO_SUFFIXES)} video, or give a "
                         "path without a suffix for a folder of frames")
    if not fps or fps <= 0 or not seconds or seconds <= 0:
        raise ValueError(f"make_synthetic_video: need seconds > 0 and fps > 0, got seconds={seconds}, fps={fps}")
    h, w = int(size[0]), int(size[1])
    if h < 32 or w < 32:
        raise ValueError(f"make_synthetic_video: size {size} is too small (min 32×32)")
    classes = tuple(str(c).strip().lower() for c in classes)
    if not classes or any(c not in EXPRESSION_AUS for c in classes):
        raise ValueError(f"make_synthetic_video: classes must be names from {sorted(EXPRESSION_AUS)}; got {classes}")
    if amplitude <= 0 or head_motion < 0 or noise < 0:
        raise ValueError("make_synthetic_video: need amplitude > 0, head_motion >= 0 and noise >= 0")
    return (h, w), classes


def make_synthetic_video(path, *, seconds: float = 30.0, fps: float = 200, size=(128, 128), n_micro=None,
                         blinks=None, head_turns=None, macro=None, classes=("negative", "positive", "surprise"),
                         amplitude: float = 3.5, head_motion: float = 1.0, noise: float = 1.0,
                         seed: int = 0) -> Path:
    """Write a long video of one synthetic subject, with its events' ground truth in a CSV beside it.

    Args:
        path: ``.avi`` file (Motion-JPEG, which OpenCV headless both writes and reads), or a path without
            suffix for a folder of frames ``img000000.jpg``...  Replaced if it exists.
        seconds: length of the video.
        fps: frame rate (the events' durations are in seconds, so any rate works).
        size: ``(height, width)`` of the frames; the face fills them, as after a face crop.
        n_micro: micro-expressions; default one per 5 s (at least one).
        blinks: blinks; default one per 4 s.
        head_turns: head turns; default one per 8 s.
        macro: slow macro-expressions; default one per 15 s.
        classes: labels drawn for the micro- and macro-expressions (names of ``EXPRESSION_AUS``).
        amplitude: micro-expression peak movement in pixels at 128-pixel scale, as in ``make_synthetic``
            (× 0.75–1.25 per event × the subject's expressiveness).
        head_motion: scales head drift, tremor and head turns (0: a still head).
        noise: scales the camera noise (0: none).
        seed: random seed; the same arguments give the same frames and CSV.

    Returns:
        The video's path.  The truth CSV is ``path.with_suffix(".csv")`` (for a folder, ``<folder>.csv``), with
        the columns ``TRUTH_COLUMNS``; frames count from 0; ``distractor`` is 0 for the micro-expressions.

    Raises:
        ValueError: bad arguments, or more events than fit in ``seconds``.

    Example:
        >>> video = make_synthetic_video("/tmp/v/s01.avi", seconds=6, fps=100, seed=3)  # doctest: +SKIP
        >>> pd.read_csv(video.with_suffix(".csv")).query("distractor == 0")  # doctest: +SKIP
    """
    path = Path(path)
    size, classes = _check_args(path, seconds, fps, size, classes, amplitude, head_motion, noise)
    rng = np.random.default_rng(seed)
    p = _subject_params(rng, size)
    p["noise"] = p["noise"] * noise
    n = int(round(seconds * fps))
    events = _schedule(rng, _event_counts(seconds, n_micro, blinks, head_turns, macro), seconds, fps, classes)
    written = _write_video(path, _frames(rng, p, events, n, fps, amplitude, head_motion), fps, size)
    rows = [{"video": path.name, "kind": e["kind"], "distractor": int(e["kind"] != "micro"), "onset": e["onset"],
             "apex": e["apex"], "offset": e["offset"], "label": e["label"], "aus": e["aus"], "fps": float(fps)}
            for e in sorted(events, key=lambda e: e["onset"])]
    assert written == n, f"wrote {written} frames, expected {n}"
    atomic_write_text(path.with_suffix(".csv") if path.suffix else path.with_name(path.name + ".csv"),
                      pd.DataFrame(rows, columns=list(TRUTH_COLUMNS)).to_csv(index=False))
    return path


__all__ = ["TRUTH_COLUMNS", "make_synthetic_video"]
