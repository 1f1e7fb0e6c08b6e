"""Every protocol's folds: test subjects never in training or validation; validation subject-disjoint."""

import numpy as np
import pandas as pd
import pytest

from kerasmer.evaluation.protocols import (
    GROUP_COLUMN, add_group_column, check_fold_classes, make_folds,
)


def _frame(datasets=("casme2",), subjects=6, clips_per_class=2, classes=("negative", "positive", "surprise")):
    rows = [{"dataset": d, "subject": f"{s:02d}", "clip": f"{d}_{s}_{c}_{k}", "emotion": c}
            for d in datasets for s in range(1, subjects + 1) for c in classes for k in range(clips_per_class)]
    return add_group_column(pd.DataFrame(rows))


def _check_honest(df, fold, subject_independent=True):
    g = df[GROUP_COLUMN].to_numpy()
    tr, va, te = set(g[fold.train]), set(g[fold.val]), set(g[fold.test])
    assert not set(fold.test) & (set(fold.train) | set(fold.val))
    assert va and not tr & va
    if subject_independent:
        assert not te & (tr | va)


def test_group_column_prefixes_dataset_only_when_ids_collide():
    df = _frame(datasets=("casme2", "smic"), subjects=2)
    assert set(df[GROUP_COLUMN]) == {"casme2/01", "casme2/02", "smic/01", "smic/02"}
    assert set(_frame(subjects=2)[GROUP_COLUMN]) == {"01", "02"}


def test_kfold_is_subject_independent_and_covers_every_clip():
    df = _frame(subjects=9)
    folds = make_folds("kfold", df, n_splits=3, seed=1)
    assert [f.name for f in folds] == ["k1", "k2", "k3"]
    for f in folds:
        _check_honest(df, f)
    assert sorted(np.concatenate([f.test for f in folds])) == list(range(len(df)))
    with pytest.raises(ValueError, match="n_splits=20 exceeds the 9 subjects"):
        make_folds("kfold", df, n_splits=20)


def test_split_is_subject_dependent_but_validation_is_still_honest():
    df = _frame(subjects=6)
    (fold,) = make_folds("split", df, test_fraction=0.25, seed=0)
    g = df[GROUP_COLUMN].to_numpy()
    assert set(g[fold.test]) & set(g[fold.train]), "split shares subjects between training and test"
    _check_honest(df, fold, subject_independent=False)
    assert len(fold.test) == pytest.approx(0.25 * len(df), abs=1)


def test_hde_trains_on_one_dataset_and_tests_on_the_other_both_ways():
    df = _frame(datasets=("casme2", "samm"), subjects=4)
    folds = make_folds("hde", df)
    assert [f.name for f in folds] == ["casme2->samm", "samm->casme2"]
    ds = df["dataset"].to_numpy()
    for f, (a, b) in zip(folds, [("casme2", "samm"), ("samm", "casme2")]):
        assert set(ds[f.train]) == {a} and set(ds[f.val]) == {a} and set(ds[f.test]) == {b}
        _check_honest(df, f)


def test_loso_and_composite_folds_use_groups():
    df = _frame(datasets=("casme2", "smic"), subjects=3)
    folds = make_folds("megc_composite", df)
    assert len(folds) == 6 and folds[0].name == "casme2/01"
    for f in folds:
        _check_honest(df, f)
    with pytest.raises(ValueError, match="unknown protocol 'holdout'"):
        make_folds("holdout", df)


def test_a_class_empty_in_a_folds_training_part_is_an_error():
    df = _frame(subjects=4)
    df = df[~((df["emotion"] == "surprise") & (df["subject"] != "01"))].reset_index(drop=True)
    folds = make_folds("loso", df)
    with pytest.raises(ValueError, match=r"fold '01'.*\['surprise'\].*no training clip"):
        check_fold_classes(df, folds, label_column="emotion", class_names=["negative", "positive", "surprise"])
