"""Fold builders for every protocol: LOSO, MEGC composite, holdout-database, k-fold, split.

All return :class:`kerasmer.evaluation.protocols.Fold` objects whose
validation part is made of whole *training* subjects (subject-disjoint from the
subjects trained on) and never contains a test row.  Only ``"split"`` puts the
same subjects in training and test, and says so (see :data:`SUBJECT_DEPENDENT`).

Example:
    >>> folds = make_folds("kfold", df, n_splits=5, seed=0)  # doctest: +SKIP
    >>> [f.name for f in folds]  # doctest: +SKIP
    ['k1', 'k2', 'k3', 'k4', 'k5']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from kerasmer.evaluation.protocols import Fold, loso_folds, split_validation

GROUP_COLUMN = "fold_group"
SUBJECT_DEPENDENT = ("split",)


def add_group_column(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``fold_group``: the subject, prefixed by the dataset when there are several datasets.

    Subject ids repeat across datasets ("01" in CASME II and SMIC are different
    people), so when one id occurs in several datasets the group is
    ``dataset/subject`` (``composite`` already prefixes subjects, ``casme2_01``).
    """
    for col in ("subject",):
        if col not in df.columns:
            raise ValueError(f"add_group_column: the annotation table has no {col!r} column")
    out = df.copy()
    subject = out["subject"].astype(str)
    shared = "dataset" in out.columns and (out.groupby(subject)["dataset"].nunique() > 1).any()
    if shared:
        out[GROUP_COLUMN] = out["dataset"].astype(str) + "/" + subject
    else:
        out[GROUP_COLUMN] = subject
    return out


def kfold_folds(df: pd.DataFrame, *, label_column: str = "emotion", n_splits: int = 5, val_fraction: float = 0.15,
                seed: int = 0) -> list[Fold]:
    """Subject-independent stratified group k-fold (scikit-learn ``StratifiedGroupKFold``).

    Args:
        df: annotation table with ``fold_group`` (see :func:`add_group_column`).
        label_column: column stratified on.
        n_splits: number of folds (at most the number of subjects).
        val_fraction: share of each fold's training subjects used for validation.
        seed: shuffling seed.

    Returns:
        ``n_splits`` folds named ``k1`` ... ``kN``.
    """
    groups = df[GROUP_COLUMN].astype(str).to_numpy()
    n_groups = len(np.unique(groups))
    if n_splits > n_groups:
        raise ValueError(f"kfold_folds: n_splits={n_splits} exceeds the {n_groups} subjects")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    positions = np.arange(len(df))
    folds = []
    for i, (train, test) in enumerate(splitter.split(positions, df[label_column].astype(str), groups=groups)):
        tr, va = split_validation(train, groups, fraction=val_fraction, seed=seed + i)
        folds.append(Fold(name=f"k{i + 1}", train=tr, val=va, test=np.sort(test)))
    return folds


def split_folds(df: pd.DataFrame, *, label_column: str = "emotion", test_fraction: float = 0.2,
                val_fraction: float = 0.15, seed: int = 0) -> list[Fold]:
    """One random, stratified, **subject-dependent** train/test split of the clips.

    The same subjects appear in training and test, which inflates scores; the
    report's first line says so.  Validation is still honest: whole subjects
    taken from the training clips, never test clips.

    Returns:
        A single fold named ``split``.
    """
    positions = np.arange(len(df))
    labels = df[label_column].astype(str).to_numpy()
    counts = pd.Series(labels).value_counts()
    stratify = labels if counts.min() >= 2 else None
    train, test = train_test_split(positions, test_size=test_fraction, random_state=seed, stratify=stratify)
    groups = df[GROUP_COLUMN].astype(str).to_numpy()
    tr, va = split_validation(np.sort(train), groups, fraction=val_fraction, seed=seed)
    return [Fold(name="split", train=tr, val=va, test=np.sort(test))]


def hde_folds(df: pd.DataFrame, *, val_fraction: float = 0.15, seed: int = 0) -> list[Fold]:
    """Holdout-database evaluation: train on one dataset, test on the other, both directions.

    Args:
        df: a two-dataset table (``dataset`` column) with a shared label scheme.
        val_fraction: share of the training dataset's subjects used for validation.
        seed: seed of the validation split.

    Returns:
        Two folds named ``A->B`` and ``B->A`` (datasets in sorted order).
    """
    if "dataset" not in df.columns:
        raise ValueError("hde_folds: the annotation table has no 'dataset' column")
    names = sorted(df["dataset"].astype(str).unique())
    if len(names) != 2:
        raise ValueError(f"hde_folds: holdout-database evaluation needs exactly two datasets, got {names}")
    groups = df[GROUP_COLUMN].astype(str).to_numpy()
    ds = df["dataset"].astype(str).to_numpy()
    folds = []
    for i, (a, b) in enumerate([(names[0], names[1]), (names[1], names[0])]):
        train = np.flatnonzero(ds == a)
        tr, va = split_validation(train, groups, fraction=val_fraction, seed=seed + i)
        folds.append(Fold(name=f"{a}->{b}", train=tr, val=va, test=np.flatnonzero(ds == b)))
    return folds


def make_folds(protocol: str, df: pd.DataFrame, *, label_column: str = "emotion", val_fraction: float = 0.15,
               n_splits: int = 5, test_fraction: float = 0.2, seed: int = 0) -> list[Fold]:
    """Folds of ``protocol`` over ``df`` (which must have ``fold_group``).

    Args:
        protocol: ``"loso"``, ``"megc_composite"`` (LOSO over the composite's
            dataset-prefixed subjects), ``"hde"``, ``"kfold"`` or ``"split"``.
        df: annotation table.
        label_column: label column (k-fold and split stratify on it).
        val_fraction, n_splits, test_fraction, seed: protocol settings.

    Returns:
        A list of :class:`Fold`.

    Raises:
        ValueError: an unknown protocol.
    """
    if GROUP_COLUMN not in df.columns:
        df = add_group_column(df)
    if protocol in ("loso", "megc_composite"):
        return loso_folds(df, subject_column=GROUP_COLUMN, val_fraction=val_fraction, seed=seed)
    if protocol == "kfold":
        return kfold_folds(df, label_column=label_column, n_splits=n_splits, val_fraction=val_fraction, seed=seed)
    if protocol == "split":
        return split_folds(df, label_column=label_column, test_fraction=test_fraction, val_fraction=val_fraction,
                           seed=seed)
    if protocol == "hde":
        return hde_folds(df, val_fraction=val_fraction, seed=seed)
    raise ValueError(f"make_folds: unknown protocol {protocol!r}; choose loso, megc_composite, hde, kfold or split")


def check_fold_classes(df: pd.DataFrame, folds, *, label_column: str, class_names) -> None:
    """Raise if a class has no training clip in some fold (the label scheme left it empty).

    A class missing from a fold's *test* subjects is normal in LOSO and is
    handled by the metrics; a class the model never sees in training is not.
    """
    labels = df[label_column].astype(str).to_numpy()
    for fold in folds:
        present = set(labels[fold.train])
        missing = [c for c in class_names if c not in present]
        if missing:
            raise ValueError(
                f"fold {fold.name!r}: class(es) {missing} have no training clip (label column {label_column!r}); "
                "the label scheme leaves them empty here. Merge or drop those classes, or choose another scheme.")
