"""LOSO folds never share a subject between train, validation and test."""

import numpy as np
import pandas as pd
import pytest

from kerasmer.evaluation import loso_folds


def _frame(subjects=8, clips=5):
    rows = [{"subject": f"{s:02d}", "clip": f"EP{s:02d}_{c}"} for s in range(1, subjects + 1) for c in range(clips)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("val_fraction", [0.15, 0.3])
def test_loso_parts_are_subject_disjoint(val_fraction):
    df = _frame()
    folds = loso_folds(df, val_fraction=val_fraction, seed=3)
    assert [f.name for f in folds] == sorted(df["subject"].unique())
    subj = df["subject"].to_numpy()
    covered = []
    for f in folds:
        tr, va, te = set(subj[f.train]), set(subj[f.val]), set(subj[f.test])
        assert te == {f.name}
        assert va, "every fold has validation subjects"
        assert not (tr & va) and not (tr & te) and not (va & te)
        # every row is in exactly one part
        assert sorted(np.concatenate([f.train, f.val, f.test])) == list(range(len(df)))
        covered.extend(f.test)
    assert sorted(covered) == list(range(len(df)))


def test_validation_changes_with_seed_but_is_deterministic():
    df = _frame()
    a = [tuple(f.val) for f in loso_folds(df, seed=0)]
    b = [tuple(f.val) for f in loso_folds(df, seed=0)]
    c = [tuple(f.val) for f in loso_folds(df, seed=1)]
    assert a == b and a != c


def test_single_subject_is_an_error():
    with pytest.raises(ValueError, match="at least 2 subjects"):
        loso_folds(_frame(subjects=1))
