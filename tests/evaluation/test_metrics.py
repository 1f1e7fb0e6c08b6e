"""Metrics against hand-computed values."""

import numpy as np
import pytest

from kerasmer.evaluation import compute_metrics, mean_std_across_folds

CLASSES = ["negative", "positive", "surprise"]


def test_perfect_predictions():
    m = compute_metrics([0, 1, 2, 2], [0, 1, 2, 2], CLASSES)
    assert m["accuracy"] == m["uf1"] == m["uar"] == m["war"] == 1.0
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]


def test_uf1_uar_by_hand():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 2, 2, 2]
    m = compute_metrics(y_true, y_pred, CLASSES)
    recalls = [3 / 4, 1 / 2, 2 / 2]
    precisions = [3 / 3, 1 / 2, 2 / 3]
    f1 = [2 * p * r / (p + r) for p, r in zip(precisions, recalls)]
    assert m["uar"] == pytest.approx(np.mean(recalls))
    assert m["uf1"] == pytest.approx(np.mean(f1))
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["war"] == pytest.approx(6 / 8)
    assert m["per_class"]["positive"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["negative"]["support"] == 4


def test_absent_class_excluded_from_macro_scores():
    # a LOSO fold whose subject has no 'surprise' clip: its recall is undefined, not 0
    m = compute_metrics([0, 1], [0, 1], CLASSES)
    assert m["uf1"] == 1.0 and m["uar"] == 1.0
    assert m["classes_present"] == ["negative", "positive"]


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics([0, 1], [0], CLASSES)


def test_mean_std_is_labelled_per_fold():
    out = mean_std_across_folds([{"accuracy": 1.0, "uf1": 1.0, "uar": 1.0, "war": 1.0},
                                 {"accuracy": 0.0, "uf1": 0.5, "uar": 0.5, "war": 0.0}])
    assert out["accuracy"] == {"mean": 0.5, "std": 0.5, "folds": 2}
