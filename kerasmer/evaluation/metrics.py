"""MER metrics from scikit-learn: accuracy, UF1, UAR, WAR, per-class P/R/F1, confusion.

UF1 (unweighted F1) is the macro-average F1 and UAR (unweighted average
recall) the macro-average recall, as in the MEGC challenges; WAR (weighted
average recall) equals accuracy.  Pooled metrics are computed on the
predictions of all folds concatenated — never as the mean of per-fold scores,
which is reported separately and labelled as such.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support, recall_score


def compute_metrics(y_true, y_pred, class_names) -> dict:
    """Classification metrics over integer labels.

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.
        class_names: names of the classes, index-aligned.

    Returns:
        A JSON-serialisable dict: ``n``, ``accuracy``, ``uf1``, ``uar``, ``war``,
        ``per_class`` (``{name: {precision, recall, f1, support}}``) and
        ``confusion_matrix`` (rows true, columns predicted).  Classes absent
        from ``y_true`` are excluded from UF1/UAR (their recall is undefined);
        ``classes_present`` lists those that count.

    Example:
        >>> compute_metrics([0, 1, 2], [0, 1, 1], ["neg", "pos", "sur"])["uf1"]  # doctest: +SKIP
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"compute_metrics: y_true has shape {y_true.shape}, y_pred {y_pred.shape}")
    labels = list(range(len(class_names)))
    present = sorted(set(y_true.tolist()))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    n = int(len(y_true))
    return {
        "n": n,
        "accuracy": float(np.mean(y_true == y_pred)) if n else float("nan"),
        "uf1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)) if n else float("nan"),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)) if n else float("nan"),
        "war": float(recall_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)) if n else float("nan"),
        "classes_present": [class_names[i] for i in present],
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def mean_std_across_folds(fold_metrics: list[dict], keys=("accuracy", "uf1", "uar", "war")) -> dict:
    """Mean and standard deviation of per-fold scores (labelled separately from pooled scores)."""
    out = {}
    for key in keys:
        vals = np.array([m[key] for m in fold_metrics], dtype=float)
        out[key] = {"mean": float(np.nanmean(vals)), "std": float(np.nanstd(vals)), "folds": int(len(vals))}
    return out


def metrics_by_group(y_true, y_pred, groups, class_names) -> dict:
    """:func:`compute_metrics` over each group's clips on its own (e.g. each dataset of a composite).

    Args:
        y_true, y_pred: class indices of all clips.
        groups: the group of each clip (aligned with ``y_true``).
        class_names: names of the classes, index-aligned.

    Returns:
        ``{group: metrics}``, groups sorted.

    Example:
        >>> metrics_by_group([0, 1, 0], [0, 1, 1], ["samm", "smic", "smic"], ["neg", "pos"])["smic"]["n"]
        2
    """
    y_true, y_pred, groups = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int), np.asarray(groups)
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise ValueError(f"metrics_by_group: {len(y_true)} labels, {len(y_pred)} predictions, {len(groups)} groups")
    return {str(g): compute_metrics(y_true[groups == g], y_pred[groups == g], class_names)
            for g in sorted(set(groups.tolist()))}
