"""Subject-independent evaluation protocols, built on scikit-learn's group splitters.

The honesty rule every protocol follows: a fold's test subjects never influence
training, early stopping, learning-rate schedules or the choice of checkpoint.
Validation data come only from the training subjects and are subject-disjoint
from the subjects trained on.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, LeaveOneGroupOut


@dataclasses.dataclass(frozen=True)
class Fold:
    """Row positions (into the annotation DataFrame) of one fold's three parts.

    Attributes:
        name: fold id, e.g. ``"sub05"`` for LOSO.
        train: positions trained on.
        val: positions used for early stopping / checkpoint choice (training subjects only).
        test: positions evaluated on (the held-out subjects).
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_validation(train_idx: np.ndarray, groups: np.ndarray, *, fraction: float = 0.15, seed: int = 0):
    """Split training positions into (train, val) with whole subjects in val.

    Args:
        train_idx: positions of the training rows.
        groups: subject id of every row of the full DataFrame.
        fraction: share of training *subjects* (at least one) held out for validation.
        seed: RNG seed.

    Returns:
        ``(train, val)`` position arrays, subject-disjoint.  With fewer than two
        training subjects, ``val`` is empty (no early stopping is possible honestly).
    """
    train_idx = np.asarray(train_idx)
    subjects = np.unique(groups[train_idx])
    if fraction <= 0 or len(subjects) < 2:
        return train_idx, train_idx[:0]
    n_val = max(1, int(round(fraction * len(subjects))))
    n_val = min(n_val, len(subjects) - 1)
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    tr, va = next(splitter.split(train_idx, groups=groups[train_idx]))
    return train_idx[tr], train_idx[va]


def loso_folds(df: pd.DataFrame, *, subject_column: str = "subject", val_fraction: float = 0.15,
               seed: int = 0) -> list[Fold]:
    """Leave-one-subject-out folds, each with a subject-disjoint validation split.

    Args:
        df: annotation DataFrame (one row per clip).
        subject_column: column holding subject ids (prefixed by dataset in composites).
        val_fraction: share of the training subjects used for validation.
        seed: seed of the validation split (varied per fold).

    Returns:
        One :class:`Fold` per subject, in sorted subject order.

    Example:
        >>> folds = loso_folds(df)  # doctest: +SKIP
        >>> folds[0].name  # doctest: +SKIP
        '01'
    """
    groups = df[subject_column].astype(str).to_numpy()
    if len(np.unique(groups)) < 2:
        raise ValueError(f"loso_folds: LOSO needs at least 2 subjects in column {subject_column!r}")
    folds = []
    positions = np.arange(len(df))
    for i, (train, test) in enumerate(LeaveOneGroupOut().split(positions, groups=groups)):
        tr, va = split_validation(train, groups, fraction=val_fraction, seed=seed + i)
        folds.append(Fold(name=str(groups[test][0]), train=tr, val=va, test=test))
    return folds
