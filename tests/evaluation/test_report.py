"""Reports rebuilt from run directories alone: pooled vs per-fold scores, merges, failed folds, plots."""

import json

import numpy as np
import pytest

from kerasmer.evaluation.report import load_runs, write_report
from kerasmer.evaluation.results import FoldResult, fold_dirname
from kerasmer.viz import plot_confusion_matrix

NAMES = ["negative", "positive", "surprise"]


def _fold(name, y_true, y_pred, epoch=2):
    n = len(y_true)
    probs = np.eye(3)[y_pred] * 0.8 + 0.2 / 3
    from kerasmer.evaluation import compute_metrics

    return FoldResult(name=name, test_subjects=[name], val_subjects=["v"], train_subjects=["t"],
                      clips=[f"c{i}" for i in range(n)], clip_subjects=[name] * n, y_true=np.array(y_true),
                      y_pred=np.array(y_pred), probabilities=probs, evaluated_epoch=epoch,
                      selection="best val_loss (validation subjects only)", epochs_run=3,
                      history={"loss": [1.0, 0.9, 0.8], "val_loss": [1.1, 1.0, 1.05]}, seconds=1.0,
                      metrics=compute_metrics(y_true, y_pred, NAMES), epochs_planned=3)


def _run_dir(path, folds, protocol="loso", failed=None, names=NAMES):
    (path / "folds").mkdir(parents=True)
    all_names = [f.name for f in folds] + list(failed or {})
    (path / "run.json").write_text(json.dumps({
        "class_names": names, "protocol": protocol, "label_column": "emotion", "model": "learnet",
        "labels": None, "subject_dependent": protocol == "split", "folds": all_names,
        "selected_folds": all_names, "recipe": {"name": "learnet", "paper": "LEARNet"}, "precision": "float32"}))
    for f in folds:
        d = path / "folds" / fold_dirname(f.name)
        d.mkdir()
        (d / "result.json").write_text(json.dumps(f.to_json()))
    for name, msg in (failed or {}).items():
        d = path / "folds" / fold_dirname(name)
        d.mkdir()
        (d / "failed.json").write_text(json.dumps({"fold": name, "error": msg}))
    return path


def test_pooled_scores_are_not_the_mean_of_fold_scores(tmp_path):
    a = _fold("01", [0, 0, 0, 0], [0, 0, 0, 1])
    b = _fold("02", [1, 2], [2, 2], epoch=3)
    run = _run_dir(tmp_path / "run", [a, b], failed={"03": "fold 03: training loss became nan in epoch 1"})
    md = write_report(run)
    m = json.loads((run / "metrics.json").read_text())
    assert m["pooled"]["n"] == 6 and m["pooled"]["accuracy"] == pytest.approx(4 / 6)
    assert m["across_folds"]["accuracy"]["mean"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert m["pooled"]["confusion_matrix"] == [[3, 1, 0], [0, 0, 1], [0, 0, 1]]
    assert m["pooled"]["per_class"]["surprise"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                                    "support": 1}
    assert [f["evaluated_epoch"] for f in m["folds"]] == [2, 3] and m["failed_folds"] == {"03": m["failed_folds"]["03"]}
    assert md.startswith("Subject-independent evaluation") and "| surprise | 0.5000 | 1.0000 | 0.6667 | 1 |" in md
    assert "## Failed folds" in md and "03" in md
    for name in ("predictions.csv", "confusion_matrix.png", "training_curves.png"):
        assert (run / name).stat().st_size > 0


def test_merge_checks_classes_and_duplicates(tmp_path):
    a = _run_dir(tmp_path / "a", [_fold("01", [0, 1], [0, 1])])
    b = _run_dir(tmp_path / "b", [_fold("02", [2], [2])], names=["neg", "pos", "sur"])
    with pytest.raises(ValueError, match="class_names differs"):
        load_runs([a, b])
    merged = load_runs([a, _run_dir(tmp_path / "c", [_fold("02", [2], [2])])])
    assert [f.name for f in merged["folds"]] == ["01", "02"]
    with pytest.raises(FileNotFoundError, match="not a kerasmer run directory"):
        load_runs([tmp_path])


def test_subject_dependent_and_empty_runs(tmp_path):
    md = write_report(_run_dir(tmp_path / "split", [_fold("split", [0, 1, 2], [0, 1, 1])], protocol="split"))
    assert md.splitlines()[0].startswith("**SUBJECT-DEPENDENT evaluation (protocol `split`)**")
    md = write_report(_run_dir(tmp_path / "none", [], failed={"01": "boom"}))
    assert "No fold has finished yet." in md and not (tmp_path / "none" / "confusion_matrix.png").exists()


def test_confusion_plot_checks_its_shape():
    with pytest.raises(ValueError, match="cm has shape"):
        plot_confusion_matrix([[1, 2], [3, 4]], NAMES)
