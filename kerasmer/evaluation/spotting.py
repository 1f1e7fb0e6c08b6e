"""Spotting scored as the MEGC challenges score it, and spot-then-recognise (STRS).

* **True positive** (MEGC 2019, Li, Soladié, Séguier, Wang & Yap, "Spotting micro-expressions on long
  videos sequences", FG 2019; kept by MEGC 2020, He et al., FG 2020): a spotted interval ``P`` is a
  true positive when ``|P ∩ G| / |P ∪ G| ≥ 0.5`` for a ground-truth interval ``G`` of the same video,
  frames counted inclusively.  Each ground-truth interval is matched at most once (and each spotted
  one too: pairs are taken in order of IoU); unmatched spotted intervals are false positives,
  unmatched true ones false negatives.
* **F1 over the whole set**: TP, FP and FN are summed over all videos first, then
  ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, ``F1 = 2PR / (P + R)`` (0 where undefined).
* **STRS** (Liong, See & Chan, "Spot-then-recognize: a micro-expression analysis network for seamless
  evaluation of long videos", Signal Processing: Image Communication 110, 2023; the MEGC 2024 STR task's
  metric) ``= F1_spotting × F1_analysis``.  ``F1_analysis`` is computed on the spotting true positives
  only, as in the challenge's STRS-Metric script: for each class ``c`` of the ground truth's labels,
  ``P_c`` and ``R_c`` are the precision and recall of "predicted c" against "true c" over the TP pairs
  (0 when undefined, also for a class absent from them); ``F1_analysis = 2 P̄ R̄ / (P̄ + R̄)`` of the
  class means ``P̄``, ``R̄``.  The mean of the per-class F1 (UF1) is reported too.

Spotted intervals in a video the ground truth does not list count as false positives (the
challenge script skips them; a spotter that fires on a video without micro-expressions is wrong).

Example:
    >>> pred = pd.DataFrame({"video": ["v"], "onset": [10], "offset": [40]})
    >>> truth = pd.DataFrame({"video": ["v"], "onset": [15], "offset": [45]})
    >>> evaluate_spotting(pred, truth)["f1"]
    1.0
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kerasmer.data.readers._common import list_frames

IOU_THRESHOLD = 0.5


def interval_iou(a_onset: int, a_offset: int, b_onset: int, b_offset: int) -> float:
    """Intersection over union of two inclusive frame intervals.

    Example:
        >>> interval_iou(0, 9, 5, 14)   # 5 shared frames of 15
        0.3333333333333333
    """
    inter = min(a_offset, b_offset) - max(a_onset, b_onset) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a_offset - a_onset + 1) + (b_offset - b_onset + 1) - inter)


def match_intervals(pred, truth, iou_threshold: float = IOU_THRESHOLD) -> list[tuple[int, int, float]]:
    """Match spotted to true intervals of one video: ``(pred index, truth index, IoU)`` of the TPs.

    Pairs with IoU ≥ ``iou_threshold`` are taken in order of decreasing IoU; each interval is used once.

    Args:
        pred: ``[(onset, offset), ...]`` spotted.
        truth: ``[(onset, offset), ...]`` true.
        iou_threshold: 0.5 in MEGC.

    Example:
        >>> match_intervals([(0, 10), (50, 60)], [(2, 12), (100, 110)])
        [(0, 0, 0.6923076923076923)]
    """
    pairs = sorted(((interval_iou(p[0], p[1], g[0], g[1]), i, j) for i, p in enumerate(pred)
                    for j, g in enumerate(truth)), reverse=True)
    used_p, used_g, out = set(), set(), []
    for iou, i, j in pairs:
        if iou < iou_threshold:
            break
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
            out.append((i, j, iou))
    return sorted(out)


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts (0 where a denominator is 0).

    Example:
        >>> prf(3, 2, 2)
        (0.6, 0.6, 0.6)
    """
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def analysis_f1(true_labels, pred_labels, classes) -> dict:
    """Recognition scores on the spotting TPs, as STRS defines them (see the module docstring).

    Args:
        true_labels: true label of each TP pair.
        pred_labels: predicted label of each TP pair.
        classes: the classes scored (the ground truth's labels).

    Returns:
        ``{"precision", "recall", "f1", "uf1", "per_class"}``.

    Example:
        >>> analysis_f1(["a", "b", "b"], ["a", "a", "a"], ["a", "b"])["f1"]   # P̄ = (1/3 + 0) / 2, R̄ = (1 + 0) / 2
        0.25
    """
    t, p = np.asarray(list(true_labels), object), np.asarray(list(pred_labels), object)
    keep = np.isin(t, list(classes))            # TPs whose true class is not scored are left out
    t, p = t[keep], p[keep]
    per_class = {}
    for c in classes:
        tp, fp, fn = int(((p == c) & (t == c)).sum()), int(((p == c) & (t != c)).sum()), int(((p != c) & (t == c)).sum())
        per_class[c] = dict(zip(("precision", "recall", "f1"), prf(tp, fp, fn)))
    precision = float(np.mean([v["precision"] for v in per_class.values()])) if per_class else 0.0
    recall = float(np.mean([v["recall"] for v in per_class.values()])) if per_class else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    uf1 = float(np.mean([v["f1"] for v in per_class.values()])) if per_class else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "uf1": uf1, "per_class": per_class}


def check_intervals(table: pd.DataFrame, *, what: str, need_label: bool = False) -> pd.DataFrame:
    """Validate an interval table (columns ``video, onset, offset`` [, ``label``]); errors name the row.

    Rows with a non-zero ``distractor`` column (blinks, head turns... in a synthetic video's truth) are
    left out.

    Example:
        >>> check_intervals(pd.DataFrame({"video": ["v"], "onset": [3], "offset": [9]}), what="pred").shape
        (1, 3)
    """
    cols = ["video", "onset", "offset"] + (["label"] if need_label else [])
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; columns present: {list(table.columns)}")
    if "distractor" in table.columns:  # the synthetic videos' truth lists the distractors too
        table = table[pd.to_numeric(table["distractor"], errors="coerce").fillna(0) == 0]
    table = table.copy()
    for c in ("onset", "offset"):
        num = pd.to_numeric(table[c], errors="coerce")
        bad = num.isna() | (num != num.round())
        if bad.any():
            row = table.index[bad.to_numpy()][0]
            raise ValueError(f"{what}: row {row}: {c} '{table.loc[row, c]}' is not a whole frame number")
        table[c] = num.astype(int)
    bad = table["offset"] < table["onset"]
    if bad.any():
        row = table.index[bad.to_numpy()][0]
        raise ValueError(f"{what}: row {row}: offset {table.loc[row, 'offset']} is before onset "
                         f"{table.loc[row, 'onset']}")
    table["video"] = table["video"].astype(str)
    if "label" in table.columns:
        table["label"] = table["label"].fillna("").astype(str).str.strip().str.lower()
    return table


def read_intervals(path, *, what: str = "intervals") -> pd.DataFrame:
    """Read an interval CSV (checked by :func:`check_intervals`, which leaves out ``distractor`` rows).

    A table without a ``video`` column is one video, named after the file's stem.

    Example:
        >>> truth = read_intervals("long/s01.csv", what="truth")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{what} {path}: cannot be read as CSV ({type(err).__name__}: {err})") from err
    if "video" not in table.columns:
        table["video"] = path.stem
    table.index = table.index + 2  # the CSV line of each row (line 1 is the header), for error messages
    return check_intervals(table, what=f"{what} {path}")


def _per_video(pred: pd.DataFrame, truth: pd.DataFrame, iou_threshold: float):
    """Per-video TP/FP/FN counts and the TP pairs' (true, predicted) labels."""
    rows, pairs = [], []
    for video in sorted(set(pred["video"]) | set(truth["video"])):
        p, g = pred[pred["video"] == video], truth[truth["video"] == video]
        matches = match_intervals(list(zip(p["onset"], p["offset"])), list(zip(g["onset"], g["offset"])),
                                  iou_threshold)
        rows.append({"video": video, "truth": len(g), "spotted": len(p), "tp": len(matches),
                     "fp": len(p) - len(matches), "fn": len(g) - len(matches)})
        if "label" in p.columns and "label" in g.columns:
            pairs += [(g["label"].iloc[j], p["label"].iloc[i]) for i, j, _ in matches]
    return pd.DataFrame(rows, columns=["video", "truth", "spotted", "tp", "fp", "fn"]), pairs


def evaluate_spotting(pred, truth, *, iou_threshold: float = IOU_THRESHOLD, classes=None) -> dict:
    """Score spotted intervals against the truth: MEGC F1 over the whole set, and STRS when labelled.

    Args:
        pred: DataFrame or CSV path with columns ``video, onset, offset`` (and ``label`` for STRS).
        truth: the same for the true intervals (a synthetic video's CSV works as it is).
        iou_threshold: IoU for a true positive (0.5 in MEGC).
        classes: classes scored by the recognition F1; default the truth's labels.

    Returns:
        ``{"tp", "fp", "fn", "precision", "recall", "f1", "per_video"}`` (``per_video`` a DataFrame), plus,
        when both tables have a ``label`` column, ``"analysis"`` (:func:`analysis_f1` of the TPs) and
        ``"strs"`` (spotting F1 × analysis F1).

    Example:
        >>> res = evaluate_spotting("predictions.csv", "s01.csv")  # doctest: +SKIP
        >>> res["f1"], res.get("strs")  # doctest: +SKIP
    """
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"evaluate_spotting: iou_threshold must lie in (0, 1], got {iou_threshold!r}")
    pred = read_intervals(pred, what="predictions") if isinstance(pred, (str, Path)) else \
        check_intervals(pred, what="predictions")
    truth = read_intervals(truth, what="truth") if isinstance(truth, (str, Path)) else \
        check_intervals(truth, what="truth")
    per_video, pairs = _per_video(pred, truth, iou_threshold)
    tp, fp, fn = (int(per_video[c].sum()) for c in ("tp", "fp", "fn"))
    precision, recall, f1 = prf(tp, fp, fn)
    out = {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1,
           "per_video": per_video, "iou_threshold": iou_threshold}
    if "label" in pred.columns and "label" in truth.columns:
        classes = sorted(set(truth["label"]) - {""}) if classes is None else [str(c).lower() for c in classes]
        out["analysis"] = analysis_f1([t for t, _ in pairs], [p for _, p in pairs], classes)
        out["strs"] = f1 * out["analysis"]["f1"]
    return out


def _frame_index(row, number: int) -> int:
    """Position of frame ``number`` among all frames of the row's long video (its folder, sorted)."""
    folder = Path(row["frame_paths"][0]).parent
    _, numbers = list_frames(folder, dataset=str(row["dataset"]))
    try:
        return numbers.index(int(number))
    except ValueError:
        raise ValueError(f"{row['dataset']} {row['subject']}/{row['clip']}: frame {number} is not in {folder}") \
            from None


def truth_from_rows(df: pd.DataFrame, *, expression: str = "micro", frame_base: str = "index") -> pd.DataFrame:
    """Ground-truth intervals per long video from a long-video reader's rows (CAS(ME)², CAS(ME)³).

    Args:
        df: rows of ``read_dataset("casme_sq", root, expression="all")`` or ``read_dataset("casme3", root)``.
        expression: ``"micro"``, ``"macro"`` or ``"all"``: which rows, where an ``expression_type``
            column says (CAS(ME)²); CAS(ME)³ part A's label sheet lists micro-expressions only.
        frame_base: ``"index"`` (default): onset, apex and offset become 0-based positions in the video's
            frame folder, as :func:`kerasmer.data.preprocess.spotting.spot_intervals` numbers them;
            ``"number"`` keeps the dataset's frame numbers.

    Returns:
        DataFrame ``video`` (``"<subject>/<video folder or name>"``), ``onset``, ``apex``, ``offset``,
        ``label`` (the emotion, lower case), ``type``.

    Example:
        >>> rows = read_dataset("casme_sq", "/data/CASME_sq", expression="all")  # doctest: +SKIP
        >>> truth_from_rows(rows).groupby("video").size()  # doctest: +SKIP
    """
    if expression not in ("micro", "macro", "all") or frame_base not in ("index", "number"):
        raise ValueError(f"truth_from_rows: expression must be micro/macro/all and frame_base index/number; "
                         f"got {expression!r}, {frame_base!r}")
    if "video" not in df.columns:
        raise ValueError("truth_from_rows: the rows have no 'video' column; they come from a reader of "
                         "short clips, not long videos (use casme_sq or casme3)")
    kind = df["expression_type"].astype(str) if "expression_type" in df.columns else \
        pd.Series("micro-expression", index=df.index)
    rows = df if expression == "all" else df[kind.str.startswith(expression)]
    out = []
    for _, row in rows.iterrows():
        apex = row["apex"] if not pd.isna(row["apex"]) else row["onset"]
        frames = [int(row["onset"]), int(apex), int(row["offset"])]
        if frame_base == "index":
            frames = [_frame_index(row, f) for f in frames]
        out.append({"video": f"{row['subject']}/{row['video']}", "onset": frames[0], "apex": frames[1],
                    "offset": frames[2], "label": str(row["emotion"]).strip().lower(),
                    "type": kind.loc[row.name]})
    return pd.DataFrame(out, columns=["video", "onset", "apex", "offset", "label", "type"])


__all__ = ["IOU_THRESHOLD", "analysis_f1", "check_intervals", "evaluate_spotting", "interval_iou",
           "match_intervals", "prf", "read_intervals", "truth_from_rows"]
