"""MEGC spotting scores and STRS against hand-worked examples; truth from the long-video readers; the CLI."""

import json

import pandas as pd
import pytest

from kerasmer.cli.main import main
from kerasmer.data import read_dataset
from kerasmer.evaluation.spotting import (
    analysis_f1, evaluate_spotting, interval_iou, match_intervals, prf, read_intervals, truth_from_rows,
)
from tests.data import fixtures as fx


def _df(rows, label=False):
    cols = ["video", "onset", "offset"] + (["label"] if label else [])
    return pd.DataFrame(rows, columns=cols)


def test_iou_counts_frames_inclusively():
    assert interval_iou(10, 19, 10, 19) == 1.0
    assert interval_iou(0, 9, 5, 14) == pytest.approx(5 / 15)
    assert interval_iou(0, 9, 10, 19) == 0.0                  # touching is not overlapping
    assert interval_iou(0, 3, 3, 3) == pytest.approx(1 / 4)   # one shared frame of four
    assert interval_iou(5, 14, 0, 9) == interval_iou(0, 9, 5, 14)


def test_each_true_interval_is_matched_once():
    # two spotted intervals on one true one: one TP (the better), one FP; 0.5 exactly counts (MEGC: >= 0.5)
    assert match_intervals([(0, 9), (1, 10)], [(1, 10)]) == [(1, 0, 1.0)]
    assert match_intervals([(0, 9)], [(5, 14)]) == []                      # IoU 1/3
    assert match_intervals([(0, 9)], [(0, 19)]) == [(0, 0, 0.5)]
    res = evaluate_spotting(_df([("v", 0, 9), ("v", 1, 10)]), _df([("v", 1, 10)]))
    assert (res["tp"], res["fp"], res["fn"]) == (1, 1, 0)


def test_f1_sums_counts_over_the_whole_set_before_dividing():
    # video a: 2 TP, 1 FP; video b: 1 FP, 2 FN; video c (no truth): 1 FP -> TP 2, FP 3, FN 2
    pred = _df([("a", 0, 9), ("a", 100, 120), ("a", 300, 310), ("b", 500, 509), ("c", 0, 9)])
    truth = _df([("a", 1, 10), ("a", 102, 118), ("b", 0, 9), ("b", 50, 60)])
    res = evaluate_spotting(pred, truth)
    assert (res["tp"], res["fp"], res["fn"]) == (2, 3, 2)
    # P = 2/5, R = 2/4, F1 = 2PR / (P + R) = 4/9; the mean of per-video F1s would be (0.8 + 0 + 0) / 3
    assert (res["precision"], res["recall"], res["f1"]) == pytest.approx((0.4, 0.5, 4 / 9))
    per = res["per_video"].set_index("video")
    assert per.loc["a", "fp"] == 1 and per.loc["b", "fn"] == 2 and per.loc["c", "fp"] == 1
    assert "strs" not in res                                  # no labels, no STRS
    assert prf(0, 0, 3) == (0.0, 0.0, 0.0)


def test_strs_hand_worked():
    """Liong et al.'s example: spotting P = R = 3/5; on the 3 TPs the class means give P̄ = R̄ = 1/3."""
    pred = _df([("EP02_01f", 10, 70, "happiness"), ("EP03_02", 100, 170, "others"), ("EP04_02", 0, 70, "others"),
                ("EP01_11f", 20, 90, "happiness"), ("EP02_04f", 70, 140, "happiness")], label=True)
    truth = _df([("EP02_01f", 45, 85, "happiness"), ("EP03_02", 130, 160, "others"), ("EP04_02", 20, 75, "others"),
                 ("EP01_11f", 45, 95, "repression"), ("EP02_04f", 30, 140, "repression")], label=True)
    res = evaluate_spotting(pred, truth)
    assert (res["tp"], res["fp"], res["fn"]) == (3, 2, 2) and res["f1"] == pytest.approx(0.6)
    # TPs (true, predicted): (others, others), (repression, happiness) x 2
    # happiness: P 0/2, R 0/0 -> 0, 0; others: 1, 1; repression: P 0/0 -> 0, R 0/2 -> 0
    assert res["analysis"]["precision"] == pytest.approx(1 / 3) and res["analysis"]["recall"] == pytest.approx(1 / 3)
    assert res["analysis"]["f1"] == pytest.approx(1 / 3) and res["strs"] == pytest.approx(0.2)
    perfect = evaluate_spotting(truth, truth)
    assert perfect["f1"] == 1.0 and perfect["strs"] == 1.0


def test_analysis_f1_scores_only_the_listed_classes():
    res = analysis_f1(["a", "b", "x"], ["a", "b", "a"], ["a", "b"])   # the "x" pair is not scored
    assert res["f1"] == 1.0 and res["uf1"] == 1.0
    assert analysis_f1([], [], ["a"])["f1"] == 0.0


def test_interval_csv_errors_name_the_file_and_row(tmp_path):
    bad = tmp_path / "pred.csv"
    bad.write_text("video,onset,offset\nv,10,5\n")
    with pytest.raises(ValueError, match=r"pred\.csv: row 2: offset 5 is before onset 10"):
        read_intervals(bad, what="predictions")
    bad.write_text("video,start,offset\nv,1,5\n")
    with pytest.raises(ValueError, match=r"pred\.csv: missing column\(s\) \['onset'\]"):
        read_intervals(bad, what="predictions")
    bad.write_text("video,onset,offset\nv,1.5,5\n")
    with pytest.raises(ValueError, match="row 2: onset '1.5' is not a whole frame number"):
        read_intervals(bad)


def test_synthetic_truth_csv_drops_distractors_and_names_the_video(tmp_path):
    path = tmp_path / "s01.csv"
    path.write_text("kind,distractor,onset,apex,offset,label\nmicro,0,10,12,20,positive\nblink,1,40,42,50,\n")
    truth = read_intervals(path)
    assert list(truth["video"]) == ["s01"] and list(truth["onset"]) == [10]


def test_truth_from_casme_sq_rows(tmp_path):
    root, _ = fx.write_casme_sq_fixture(tmp_path / "CASME_sq")
    rows = read_dataset("casme_sq", root, expression="all")
    micro = truth_from_rows(rows)
    assert len(micro) == 3 and set(micro["type"]) == {"micro-expression"}
    first = micro[micro["video"] == "s15/15_0101disgustingteeth"].iloc[0]
    # frames are numbered img1.jpg..: frame number 5 is position 4 of the long video
    assert (first["onset"], first["apex"], first["offset"], first["label"]) == (4, 6, 8, "negative")
    numbers = truth_from_rows(rows, expression="macro", frame_base="number")
    assert list(numbers[["onset", "apex", "offset"]].iloc[0]) == [12, 16, 25]
    with pytest.raises(ValueError, match="frame_base"):
        truth_from_rows(rows, frame_base="seconds")


def test_truth_from_casme3_rows(tmp_path):
    root, _ = fx.write_casme3_fixture(tmp_path / "CASME3")
    truth = truth_from_rows(read_dataset("casme3", root))
    a = truth[truth["video"] == "spNO.1/a"].sort_values("onset")
    assert list(a["onset"]) == [5, 15] and list(a["label"]) == ["happy", "disgust"]   # color/0.jpg: index = number


def test_cli_prints_f1_and_strs(tmp_path, capsys):
    pred, truth = tmp_path / "pred.csv", tmp_path / "truth.csv"
    _df([("v", 0, 9, "positive"), ("v", 50, 59, "negative"), ("v", 200, 209, "positive")], label=True).to_csv(
        pred, index=False)
    _df([("v", 1, 10, "positive"), ("v", 50, 62, "positive")], label=True).to_csv(truth, index=False)
    assert main(["evaluate-spotting", "--pred", str(pred), "--truth", str(truth), "--json",
                 str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "TP 2   FP 1   FN 0" in out and "F1 0.8000" in out
    # recognition over the truth's classes (positive only): TPs (positive, positive), (positive, negative)
    # -> P 1/1, R 1/2 -> F1 2/3; STRS = 0.8 x 2/3
    assert "STRS (MEGC 2024) = spotting F1 x recognition F1 = 0.5333" in out
    assert json.loads((tmp_path / "s.json").read_text())["strs"] == pytest.approx(0.8 * 2 / 3)


def test_cli_reads_the_truth_from_a_long_video_dataset(tmp_path, capsys):
    root, _ = fx.write_casme_sq_fixture(tmp_path / "CASME_sq")
    pred = tmp_path / "pred.csv"
    _df([("s15/15_0101disgustingteeth", 4, 8), ("s16/16_0502funnyerrors", 20, 25)]).to_csv(pred, index=False)
    assert main(["evaluate-spotting", "--pred", str(pred), "--dataset", "casme_sq", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "TP 1   FP 1   FN 2" in out and "STRS: needs a 'label' column" in out


def test_cli_bad_input_is_one_line(tmp_path):
    pred = tmp_path / "pred.csv"
    pred.write_text("video,onset,offset\nv,9,3\n")
    with pytest.raises(SystemExit, match=r"pred\.csv: row 2: offset 3 is before onset 9"):
        main(["evaluate-spotting", "--pred", str(pred), "--truth", str(pred)])
    with pytest.raises(SystemExit, match="--truth CSV or --dataset"):
        main(["evaluate-spotting", "--pred", str(pred)])
