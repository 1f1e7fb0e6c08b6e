"""``kerasmer evaluate-spotting``: spotted intervals scored against the truth, as MEGC scores them.

    kerasmer evaluate-spotting --pred predictions.csv --truth long/s01.csv
    kerasmer evaluate-spotting --pred all_videos.csv --dataset casme_sq --root /data/CASME_sq

The predictions CSV has the columns ``video, onset, offset`` (and ``label`` for STRS); frames are
0-based positions in each video, as ``kerasmer predict`` and
:func:`kerasmer.data.preprocess.spotting.spot_intervals` write them.  The truth is a CSV of the same
columns (a synthetic long video's CSV works as it is: its distractor rows are left out), or a
long-video dataset read by its reader (CAS(ME)², CAS(ME)³ part A), whose videos are named
``<subject>/<video>``.  A predictions CSV without a ``video`` column holds one video: with a
one-video truth, it is that video.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kerasmer.data import read_dataset
from kerasmer.evaluation.spotting import (
    IOU_THRESHOLD, check_intervals, evaluate_spotting, read_intervals, truth_from_rows,
)

_DATASETS = {"casme_sq": {"expression": "all"}, "casme3": {}}  # the long-video readers, and what to read


def _truth(args) -> pd.DataFrame:
    if bool(args.truth) == bool(args.dataset):
        raise SystemExit("kerasmer evaluate-spotting: give --truth CSV or --dataset NAME --root DIR (one of them)")
    if args.truth:
        return read_intervals(args.truth, what="truth")
    if not args.root:
        raise SystemExit(f"kerasmer evaluate-spotting: --dataset {args.dataset} needs --root DIR")
    rows = read_dataset(args.dataset, args.root, **_DATASETS[args.dataset])
    return check_intervals(truth_from_rows(rows, expression=args.expression, frame_base=args.frame_base),
                           what=f"{args.dataset} truth")


def _pred(path: str, truth: pd.DataFrame) -> pd.DataFrame:
    try:
        pred = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise SystemExit(f"kerasmer evaluate-spotting: predictions {path}: cannot be read as CSV ({err})") from None
    if "video" not in pred.columns:
        videos = sorted(set(truth["video"]))
        if len(videos) != 1:
            raise SystemExit(f"kerasmer evaluate-spotting: predictions {path} have no 'video' column, and the "
                             f"truth holds {len(videos)} videos; add the column")
        pred["video"] = videos[0]
    pred.index = pred.index + 2  # CSV line numbers in error messages
    return check_intervals(pred, what=f"predictions {path}")


def format_result(res: dict) -> str:
    """The printed report of :func:`kerasmer.evaluation.spotting.evaluate_spotting`'s result."""
    per = res["per_video"]
    lines = [per.to_string(index=False) if len(per) <= 40 else f"({len(per)} videos; --json for each)",
             "",
             f"videos {len(per)}   true intervals {int(per['truth'].sum())}   spotted {int(per['spotted'].sum())}"
             f"   (TP: IoU >= {res['iou_threshold']:g}, MEGC 2019/2020)",
             f"TP {res['tp']}   FP {res['fp']}   FN {res['fn']}",
             f"precision {res['precision']:.4f}   recall {res['recall']:.4f}   F1 {res['f1']:.4f}"]
    if "strs" in res:
        a = res["analysis"]
        lines.append(f"recognition on the {res['tp']} TPs: F1 {a['f1']:.4f} (of mean precision {a['precision']:.4f}"
                     f" and mean recall {a['recall']:.4f}; UF1 {a['uf1']:.4f})")
        lines.append(f"STRS (MEGC 2024) = spotting F1 x recognition F1 = {res['strs']:.4f}")
    else:
        lines.append("STRS: needs a 'label' column in both the predictions and the truth")
    return "\n".join(lines)


def cmd_evaluate_spotting(args) -> int:
    """Run ``kerasmer evaluate-spotting``."""
    try:
        truth = _truth(args)
        pred = _pred(args.pred, truth)
        res = evaluate_spotting(pred, truth, iou_threshold=args.iou, classes=args.classes)
    except ValueError as err:  # bad CSVs and annotation errors: one line naming the file and row
        raise SystemExit(f"kerasmer evaluate-spotting: {err}") from None
    unknown = sorted(set(pred["video"]) - set(truth["video"]))
    if unknown:
        print(f"note: {len(unknown)} predicted video(s) have no true interval; their intervals count as FP: "
              f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    print(format_result(res))
    if args.json:
        out = {k: v for k, v in res.items() if k != "per_video"}
        out["per_video"] = res["per_video"].to_dict(orient="records")
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def add_spotting_parser(sub) -> None:
    """Register ``evaluate-spotting`` on the ``kerasmer`` sub-command parser."""
    p = sub.add_parser("evaluate-spotting", help="score spotted intervals (MEGC F1, STRS) against the truth",
                       description=__doc__.split("\n\n", 2)[2].strip())
    p.add_argument("--pred", required=True, help="predictions CSV: video, onset, offset [, label]")
    p.add_argument("--truth", help="truth CSV: video, onset, offset [, label] (a synthetic video's CSV)")
    p.add_argument("--dataset", choices=sorted(_DATASETS), help="read the truth from this long-video dataset")
    p.add_argument("--root", help="the dataset's root folder (with --dataset)")
    p.add_argument("--expression", default="micro", choices=("micro", "macro", "all"),
                   help="which expressions of the dataset are the truth (default micro)")
    p.add_argument("--frame-base", default="index", choices=("index", "number"),
                   help="dataset frames as 0-based positions in the video (default) or the files' numbers")
    p.add_argument("--iou", type=float, default=IOU_THRESHOLD, help="IoU for a true positive (MEGC: 0.5)")
    p.add_argument("--classes", nargs="+", help="classes of the recognition F1 (default: the truth's labels)")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.set_defaults(func=cmd_evaluate_spotting)
