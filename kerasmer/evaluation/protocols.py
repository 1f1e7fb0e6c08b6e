"""Evaluation protocols: one table (:data:`PROTOCOLS`) from a protocol's name to its fold builder and rules.

Every protocol follows the honesty rule: a fold's test subjects never
influence training, early stopping, learning-rate schedules or the choice of
checkpoint.  Validation data come only from the training subjects and are
subject-disjoint from the subjects trained on.  Only ``"split"`` puts the same
subjects in training and test, and its :class:`Protocol` entry says so
(``subject_dependent``), which the report's first line repeats.

The table is the one place a protocol is defined: the CLI's help, the run
config's validation, fold making and the report all read it.  Adding a
protocol means writing its fold builder and one :class:`Protocol` row.

Example:
    >>> folds = make_folds("kfold", df, n_splits=5, seed=0)  # doctest: +SKIP
    >>> [f.name for f in folds]  # doctest: +SKIP
    ['k1', 'k2', 'k3', 'k4', 'k5']
    >>> get_protocol("split").subject_dependent
    True
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, LeaveOneGroupOut, StratifiedGroupKFold, train_test_split

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


GROUP_COLUMN = "fold_group"


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


def _loso(df, *, val_fraction, seed, **_):
    return loso_folds(df, subject_column=GROUP_COLUMN, val_fraction=val_fraction, seed=seed)


def _kfold(df, *, label_column, n_splits, val_fraction, seed, **_):
    return kfold_folds(df, label_column=label_column, n_splits=n_splits, val_fraction=val_fraction, seed=seed)


def _split(df, *, label_column, test_fraction, val_fraction, seed, **_):
    return split_folds(df, label_column=label_column, test_fraction=test_fraction, val_fraction=val_fraction,
                       seed=seed)


def _hde(df, *, val_fraction, seed, **_):
    return hde_folds(df, val_fraction=val_fraction, seed=seed)


MEGC_DATASETS = ("casme2", "samm", "smic")
# The MEGC 2019 composite as published (See et al., MEGC 2019): 442 clips from 68 subjects after the megc3 mapping.
MEGC2019_PUBLISHED = {"smic": {"clips": 164, "subjects": 16}, "casme2": {"clips": 145, "subjects": 24},
                      "samm": {"clips": 133, "subjects": 28}}


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One evaluation protocol.

    Attributes:
        name: the name runs and the CLI use.
        folds: ``fn(df, *, label_column, val_fraction, n_splits, test_fraction, seed) -> [Fold]``.
        help: one line for ``kerasmer train --help`` and the docs.
        subject_dependent: the same subjects appear in training and test (scores are inflated).
        n_datasets: how many datasets the run must name (None: any number).
        datasets: the dataset names allowed (None: any).
        default_labels: the label scheme used when the run names none.
        report_by: how the report breaks scores down: ``None`` (pooled only), ``"dataset"`` (pooled and each
            dataset on its own, as MEGC 2019 reports), ``"fold"`` (each fold on its own and no pooled
            headline: HDE's two directions are two separate results).
        published: ``{dataset: {"clips": n, "subjects": n}}`` the protocol's published sizes; a run whose
            data differ gets a warning (see :func:`check_published_counts`).
    """

    name: str
    folds: Callable[..., list]
    help: str
    subject_dependent: bool = False
    n_datasets: int | None = None
    datasets: tuple | None = None
    default_labels: str | None = None
    report_by: str | None = None
    published: dict | None = None

    def check_datasets(self, names: Sequence[str]) -> None:
        """Raise ValueError naming the protocol when ``names`` break its dataset rules."""
        names = list(names)
        if self.n_datasets is not None and len(names) != self.n_datasets:
            count = {1: "one", 2: "two", 3: "three"}.get(self.n_datasets, self.n_datasets)
            raise ValueError(f"config: protocol {self.name!r} needs exactly {count} datasets in data, got {names}")
        if self.datasets is not None:
            extra = sorted(set(names) - set(self.datasets))
            if extra:
                raise ValueError(f"config: protocol {self.name!r} takes {self.datasets}; not {extra}")


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("loso", _loso, "leave-one-subject-out (subjects prefixed by dataset when several are read)"),
    Protocol("megc_composite", _loso, "MEGC 2019 composite: LOSO over CASME II + SAMM + SMIC, 3 classes (megc3)",
             datasets=MEGC_DATASETS, default_labels="megc3", report_by="dataset", published=MEGC2019_PUBLISHED),
    Protocol("hde", _hde, "holdout-database: train on one dataset, test on the other, both directions",
             n_datasets=2, report_by="fold"),
    Protocol("kfold", _kfold, "subject-independent stratified group k-fold (n_splits)"),
    Protocol("split", _split, "one random clip split, SUBJECT-DEPENDENT (the report says so)",
             subject_dependent=True),
)}


def list_protocols() -> list[str]:
    """Names of the protocols, in the table's order."""
    return list(PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The :class:`Protocol` called ``name``; ValueError naming the choices otherwise."""
    try:
        return PROTOCOLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def dataset_counts(df: pd.DataFrame) -> dict:
    """Clips and subjects per dataset of an annotation table (after label mapping).

    Args:
        df: annotation table with ``dataset`` and ``subject`` columns.

    Returns:
        ``{dataset: {"clips": n, "subjects": n}}``, datasets sorted.

    Example:
        >>> dataset_counts(df)  # doctest: +SKIP
        {'casme2': {'clips': 145, 'subjects': 24}, 'samm': {'clips': 133, 'subjects': 28}, ...}
    """
    groups = df.groupby(df["dataset"].astype(str))
    return {str(name): {"clips": int(len(part)), "subjects": int(part["subject"].astype(str).nunique())}
            for name, part in groups}


def check_published_counts(protocol: str, counts: dict | None) -> list[str]:
    """Warnings for every dataset whose clip or subject count differs from the protocol's published one.

    Args:
        protocol: a name of :data:`PROTOCOLS`.
        counts: ``{dataset: {"clips": n, "subjects": n}}`` as :func:`dataset_counts` gives them.

    Returns:
        One message per differing dataset, naming both counts (empty when they agree, when the
        protocol publishes none, or when ``counts`` is None).

    Example:
        >>> check_published_counts("megc_composite", {"casme2": {"clips": 145, "subjects": 24}})[0][:40]
        'protocol megc_composite: samm has 0 clip'
    """
    published = get_protocol(protocol).published
    if not published or counts is None:
        return []
    messages = []
    for name in sorted(set(published) | set(counts)):
        want = published.get(name, {"clips": 0, "subjects": 0})
        got = counts.get(name, {"clips": 0, "subjects": 0})
        if (got["clips"], got["subjects"]) != (want["clips"], want["subjects"]):
            messages.append(f"protocol {protocol}: {name} has {got['clips']} clips from {got['subjects']} "
                            f"subjects; the published composite has {want['clips']} clips from "
                            f"{want['subjects']} subjects, so scores are not comparable with published ones")
    return messages


def make_folds(protocol: str, df: pd.DataFrame, *, label_column: str = "emotion", val_fraction: float = 0.15,
               n_splits: int = 5, test_fraction: float = 0.2, seed: int = 0) -> list[Fold]:
    """Folds of ``protocol`` over ``df`` (``fold_group`` is added when missing).

    Args:
        protocol: a name of :data:`PROTOCOLS`.
        df: annotation table.
        label_column: label column (k-fold and split stratify on it).
        val_fraction, n_splits, test_fraction, seed: protocol settings; each
            protocol uses the ones it needs.

    Returns:
        A list of :class:`Fold`.

    Raises:
        ValueError: an unknown protocol.
    """
    entry = get_protocol(protocol)
    if GROUP_COLUMN not in df.columns:
        df = add_group_column(df)
    return entry.folds(df, label_column=label_column, val_fraction=val_fraction, n_splits=n_splits,
                       test_fraction=test_fraction, seed=seed)


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
