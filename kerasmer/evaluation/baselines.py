"""Trivial baselines: the floor every score is read against (issue 12).

Three predictors that a model must beat before its score means anything, run
under exactly the folds the model is evaluated on:

* ``majority``: the most frequent class of the fold's training clips, for every test clip;
* ``apex_frame_lr``: logistic regression on the grey apex frame (the annotated apex, else the
  middle frame) resized to ``size``: what a model can score from appearance alone;
* ``apex_onset_diff_lr``: logistic regression on ``|apex - onset|`` of the same frames: what a
  linear model gets from the movement itself.

Each fold trains on its training and validation clips (both are training subjects) and predicts its
test clips; the features are standardised on the training clips only, so the test subject influences
nothing.  Frames come through the data layer's own ``clip`` input builder (the same decoding, face
crop and apex choice as the models' inputs), and the scores through
:func:`kerasmer.evaluation.metrics.compute_metrics`, so the numbers compare directly with a model's.

The run directory keeps each fold's baseline predictions in ``baselines.json``; the report pools
those of the folds it reports, so merged fan-out jobs show the floor of the same clips.

Example:
    >>> folds = make_folds("loso", df)  # doctest: +SKIP
    >>> scores = run_baselines(df, folds, label_column="emotion", class_names=["negative", "positive", "surprise"])  # doctest: +SKIP
    >>> round(scores["apex_onset_diff_lr"]["uf1"], 3)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from kerasmer.core.atomic import atomic_write_text
from kerasmer.data.pipeline.inputs import make_input_builder
from kerasmer.evaluation.metrics import compute_metrics

BASELINES = ("majority", "apex_frame_lr", "apex_onset_diff_lr")
BASELINES_FILE = "baselines.json"
RANDOM_STATE = 0  # logistic regression's solver seed: the floor must not move between runs
_LR_OPTIONS = dict(C=1.0, max_iter=2000, random_state=RANDOM_STATE)


def _check_arguments(df, folds, label_column, class_names, size, names) -> None:
    """Raise ValueError naming the bad argument before any frame is decoded."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        raise ValueError(f"run_baselines: names must be among {BASELINES}, got {list(names)}")
    if label_column not in df.columns:
        raise ValueError(f"run_baselines: label_column {label_column!r} is not a column of df "
                         f"(columns: {list(df.columns)})")
    labels = set(df[label_column].astype(str))
    missing = sorted(labels - {str(c) for c in class_names})
    if missing:
        raise ValueError(f"run_baselines: label(s) {missing} of column {label_column!r} are not in "
                         f"class_names {list(class_names)}")
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ValueError(f"run_baselines: size must be (height, width) of positive integers, got {size!r}")
    for fold in folds:
        parts = np.concatenate([fold.train, fold.val, fold.test]).astype(int)
        if len(parts) and (parts.min() < 0 or parts.max() >= len(df)):
            raise ValueError(f"run_baselines: fold {fold.name!r} has row positions outside df (0..{len(df) - 1})")


class _Features:
    """Each clip's onset and apex frames (grey, ``size``), decoded once per call and cached by row position."""

    def __init__(self, df: pd.DataFrame, size, face=None):
        self.df, self.shape = df, (2, int(size[0]), int(size[1]), 1)
        # n=2 of the uniform sampler is (onset, apex): the apex the models read (annotated, else the middle)
        self.build = make_input_builder("clip", face=face, sampler="uniform")
        self.cache: dict[int, np.ndarray] = {}

    def pair(self, i: int) -> np.ndarray:
        if i not in self.cache:
            self.cache[i] = self.build(self.df.iloc[i], self.shape).reshape(2, -1) / 255.0
        return self.cache[i]

    def matrix(self, rows, name: str) -> np.ndarray:
        pairs = [self.pair(int(i)) for i in rows]
        if name == "apex_frame_lr":
            return np.stack([p[1] for p in pairs])
        return np.stack([np.abs(p[1] - p[0]) for p in pairs])


def _predict(name: str, features: _Features | None, y, train, test) -> np.ndarray:
    """One baseline's class indices for ``test``, fitted on ``train`` (row positions)."""
    counts = np.bincount(y[train], minlength=int(y.max()) + 1)
    majority = int(np.argmax(counts))  # ties: the lowest class index
    if name == "majority" or len(np.unique(y[train])) < 2:  # one training class: nothing to separate
        return np.full(len(test), majority, dtype=int)
    scaler = StandardScaler().fit(features.matrix(train, name))  # training clips only
    # One BLAS thread: these fits are small, and a threaded BLAS competing with TensorFlow (or other jobs) for the
    # cores was measured ~100x slower on a busy 2-core machine; alone it gains nothing at this size.
    with threadpool_limits(limits=1):
        model = LogisticRegression(**_LR_OPTIONS).fit(scaler.transform(features.matrix(train, name)), y[train])
    return model.predict(scaler.transform(features.matrix(test, name))).astype(int)


def run_baselines(df: pd.DataFrame, folds, *, label_column: str, class_names, size=(32, 32), names=BASELINES,
                  face=None) -> dict:
    """Score the trivial baselines under the given folds.

    Args:
        df: annotation table (one row per clip) of a reader, with ``frame_paths`` etc.
        folds: :class:`~kerasmer.evaluation.protocols.Fold` objects (those of ``make_folds``); each trains on
            ``train`` + ``val`` and predicts ``test``.
        label_column: the label column of ``df``.
        class_names: class names; index ``k`` is class ``k`` in the predictions.
        size: (height, width) the grey frames are resized to.
        names: which of :data:`BASELINES` to run.
        face: the face option of the run's ``data_options`` (None: frames are already face crops).

    Returns:
        ``{name: {"uf1", "uar", "n", "folds": {fold: {"uf1", "uar", "n"}}, "clips", "y_true", "y_pred"}}``:
        pooled scores over all test clips, each fold's own scores, and the pooled predictions (lists of
        ``subject/clip`` ids and class indices, in fold order).

    Raises:
        ValueError: an unknown baseline, label column or label, a bad size, or a fold outside ``df``.

    Example:
        >>> scores = run_baselines(df, make_folds("loso", df), label_column="emotion",
        ...                        class_names=sorted(df["emotion"].unique()))  # doctest: +SKIP
        >>> scores["majority"]["uf1"]  # doctest: +SKIP
    """
    names, class_names = tuple(names), [str(c) for c in class_names]
    _check_arguments(df, folds, label_column, class_names, size, names)
    index = {c: k for k, c in enumerate(class_names)}
    y = np.array([index[str(v)] for v in df[label_column]], dtype=int)
    features = _Features(df, size, face=face)
    records = {}
    for fold in folds:
        train = np.concatenate([fold.train, fold.val]).astype(int)
        test = np.asarray(fold.test, dtype=int)
        records[fold.name] = {"clips": [f"{df['subject'].iloc[i]}/{df['clip'].iloc[i]}" for i in test],
                              "y_true": y[test].tolist(),
                              "y_pred": {n: _predict(n, features, y, train, test).tolist() for n in names}}
    return score_records(records, class_names)


def score_records(records: dict, class_names, fold_names=None) -> dict:
    """Pooled and per-fold scores of stored baseline predictions (see :func:`run_baselines`).

    Args:
        records: ``{fold: {"clips", "y_true", "y_pred": {name: [...]}}}``, as ``baselines.json`` holds them.
        class_names: class names, index-aligned.
        fold_names: pool only these folds (default: all), in this order.

    Returns:
        ``{name: {"uf1", "uar", "n", "folds", "clips", "y_true", "y_pred"}}``; empty when no fold is left.

    Example:
        >>> score_records({"01": {"clips": ["01/a"], "y_true": [0], "y_pred": {"majority": [0]}}}, ["a", "b"]
        ...               )["majority"]["uf1"]
        1.0
    """
    chosen = [f for f in (records if fold_names is None else fold_names) if f in records]
    if not chosen:
        return {}
    out = {}
    for name in records[chosen[0]]["y_pred"]:
        clips, y_true, y_pred, per_fold = [], [], [], {}
        for f in chosen:
            rec = records[f]
            clips += rec["clips"]
            y_true += rec["y_true"]
            y_pred += rec["y_pred"][name]
            m = compute_metrics(rec["y_true"], rec["y_pred"][name], class_names)
            per_fold[f] = {"uf1": m["uf1"], "uar": m["uar"], "n": m["n"]}
        pooled = compute_metrics(y_true, y_pred, class_names)
        out[name] = {"uf1": pooled["uf1"], "uar": pooled["uar"], "n": pooled["n"], "folds": per_fold,
                     "clips": clips, "y_true": y_true, "y_pred": y_pred}
    return out


def records_of(scores: dict) -> dict:
    """The per-fold predictions of :func:`run_baselines`' result, as ``baselines.json`` stores them."""
    records: dict = {}
    for name, s in scores.items():
        start = 0
        for fold, m in s["folds"].items():
            rec = records.setdefault(fold, {"clips": s["clips"][start:start + m["n"]],
                                            "y_true": s["y_true"][start:start + m["n"]], "y_pred": {}})
            rec["y_pred"][name] = s["y_pred"][start:start + m["n"]]
            start += m["n"]
    return records


def write_baselines(run_dir, records: dict, *, size) -> Path:
    """Store per-fold baseline predictions (:func:`records_of`) in ``run_dir/baselines.json``, atomically.

    Args:
        run_dir: the run directory.
        records: ``{fold: {"clips", "y_true", "y_pred": {name: [...]}}}``.
        size: the frame size the features were computed at (recorded).

    Returns:
        The file's path.

    Example:
        >>> write_baselines("runs/demo", records_of(run_baselines(df, folds, label_column="emotion",
        ...                                                       class_names=names)), size=(32, 32))  # doctest: +SKIP
    """
    path = Path(run_dir) / BASELINES_FILE
    atomic_write_text(path, json.dumps({"size": [int(s) for s in size], "folds": records}, indent=1))
    return path


def read_baselines(run_dirs) -> dict:
    """The stored baseline predictions of one or more run directories, merged by fold (absent file: none).

    Raises:
        ValueError: a damaged ``baselines.json`` (named).

    Example:
        >>> sorted(read_baselines(["runs/job1", "runs/job2"]))  # doctest: +SKIP
        ['01', '02']
    """
    run_dirs = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else run_dirs
    merged: dict = {}
    for d in run_dirs:
        path = Path(d) / BASELINES_FILE
        if not path.is_file():
            continue
        try:
            merged.update(json.loads(path.read_text(encoding="utf-8"))["folds"])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: damaged baselines file ({err}); delete it and rerun the command "
                             "to recompute it") from None
    return merged
