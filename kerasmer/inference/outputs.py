"""What ``kerasmer predict`` writes to ``--out DIR``; every file appears whole (written atomically).

=========================== ===================================================================
``predictions.csv``         ``onset, apex, offset, onset_s, offset_s, label, score``, then
                            ``spot_score`` and one ``prob_<class>`` column per class
``predictions.json``        the same rows, with the input, model, windows and no-face stretches
``timings.json``            seconds and frames per second of decode, face, spotting, recognition
``motion_curve.png``        the motion curve with the intervals and their labels
``annotated.avi``           with ``--video-out``: the video with the face box and current label
=========================== ===================================================================
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np

from kerasmer.core.atomic import atomic_write_text
from kerasmer.viz.spotting import plot_spotting

FILES = {"csv": "predictions.csv", "json": "predictions.json", "timings": "timings.json",
         "figure": "motion_curve.png", "video": "annotated.avi"}


def _clean(value):
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_record(result) -> dict:
    """The JSON document of a :class:`~kerasmer.inference.pipeline.VideoResult` (what ``predictions.json`` holds)."""
    m = result.model
    return _clean({
        "input": str(result.source.path), "fps": result.fps, "frames": result.timings["frames"],
        "model": {"name": m.name, "path": str(m.path), "kind": m.kind, "modality": m.modality,
                  "input_shape": list(m.input_shape), "fps": m.fps, "class_names": list(m.class_names)},
        "windows": result.windows, "no_face": [list(s) for s in result.no_face],
        "predictions": result.predictions.to_dict(orient="records"),
    })


def write_outputs(result, out: str | os.PathLike, *, video_out: bool = False) -> dict:
    """Write the predictions, their JSON, the timings, the figure and optionally the annotated video.

    Args:
        result: a :class:`~kerasmer.inference.pipeline.VideoResult`.
        out: the output directory (created).
        video_out: also write ``annotated.avi`` (decodes the video a second time).

    Returns:
        ``{kind: path}`` of the files written (kinds as in :data:`FILES`).

    Example:
        >>> paths = write_outputs(run_video("s01.avi", "saved_models/learnet"), "out")  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / name for k, name in FILES.items() if k != "video" or video_out}
    atomic_write_text(paths["csv"], result.predictions.to_csv(index=False))
    atomic_write_text(paths["json"], json.dumps(result_record(result), indent=2))
    atomic_write_text(paths["timings"], json.dumps(_clean(result.timings), indent=2))
    intervals = result.predictions[["onset", "apex", "offset", "label", "score"]].to_dict(orient="records")
    plot_spotting(result.curve, result.fps, intervals, threshold=result.threshold, no_face=result.no_face,
                  path=paths["figure"], title=f"{result.source.path.name}: motion and spotted intervals")
    if video_out:
        annotate_video(result, paths["video"])
    return paths


def _labels_per_frame(predictions, n: int) -> list[str | None]:
    labels: list[str | None] = [None] * n
    for row in predictions.itertuples():
        for i in range(int(row.onset), min(int(row.offset) + 1, n)):
            labels[i] = f"{row.label} {row.score:.2f}"
    return labels


def annotate_video(result, path: str | os.PathLike) -> Path:
    """Write the video with each window's face box and the label of the interval the frame is in (MJPG .avi).

    Args:
        result: a :class:`~kerasmer.inference.pipeline.VideoResult`.
        path: the ``.avi`` file to write (atomically).

    Returns:
        ``path``.

    Example:
        >>> annotate_video(run_video("s01.avi", "saved_models/learnet"), "annotated.avi")  # doctest: +SKIP
    """
    n = result.timings["frames"]
    labels = _labels_per_frame(result.predictions, n)
    boxes: list = [None] * n
    for w in result.windows:
        boxes[w["start"]:w["stop"]] = [w["box"]] * (w["stop"] - w["start"])
    h, w_ = result.source.size
    path = Path(path)
    # OpenCV picks the container from the suffix, so the temporary keeps it; renamed into place when whole
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), float(result.fps), (w_, h))
    try:
        for i, frame in enumerate(result.source.frames()):
            writer.write(_annotate(frame, boxes[i] if i < n else None, labels[i] if i < n else None))
        writer.release()
        os.replace(tmp, path)
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    return path


def _annotate(frame: np.ndarray, box, label) -> np.ndarray:
    img = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if box is not None:
        x, y, bw, bh = (int(round(v)) for v in box)
        cv2.rectangle(img, (x, y), (x + bw, y + bh), (0, 200, 0), 2)
    if label:
        cv2.putText(img, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2, cv2.LINE_AA)
    return img


__all__ = ["FILES", "annotate_video", "result_record", "write_outputs"]
