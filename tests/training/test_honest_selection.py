"""Honest selection, proven: a fold's test subjects reach nothing but the final predict.

Two proofs:

1. an audit of every dataset built, fitted on, validated on, normalised with and
   predicted on during a run: the test subject's clips appear only in the one
   dataset passed to ``predict``; validation clips come from training subjects
   that are not trained on; the evaluated epoch is the best *validation* epoch;
2. a counterfactual: replacing the test subject's frames and labels leaves the
   whole training (history, chosen epoch, final weights) bit-for-bit the same,
   while the same change to the validation subjects does change it (so the
   comparison can fail).
"""

import json

import keras
import numpy as np
import pytest

import kerasmer.data
from kerasmer.evaluation import loso_folds
from kerasmer.training import RunConfig, run
from kerasmer.training import FoldTrainer, TrainSpec
from kerasmer.training.recipes import get_recipe

from .conftest import SHAPE


def _keys(df):
    return set(df["subject"].astype(str) + "/" + df["clip"].astype(str))


def test_test_subjects_reach_only_predict(synthetic_root, tmp_path, monkeypatch):
    built, events, norm_calls = {}, [], []
    real_make, real_norm = kerasmer.data.make_dataset, kerasmer.data.fit_normalization
    real_fit, real_predict, real_eval = keras.Model.fit, keras.Model.predict, keras.Model.evaluate

    def make_dataset(df, **kw):
        ds = real_make(df, **kw)
        built[id(ds)] = (_keys(df), kw.get("training"))
        return ds

    def fit_normalization(df, **kw):
        norm_calls.append(_keys(df))
        return real_norm(df, **kw)

    def fit(self, x=None, *a, validation_data=None, **kw):
        events.append(("fit", built[id(x)][0], built[id(validation_data)][0] if validation_data is not None else set()))
        return real_fit(self, x, *a, validation_data=validation_data, **kw)

    def predict(self, x, *a, **kw):
        events.append(("predict", built[id(x)][0], set()))
        return real_predict(self, x, *a, **kw)

    def evaluate(self, x=None, *a, **kw):  # fit's validation pass
        events.append(("evaluate", built[id(x)][0], set()))
        return real_eval(self, x, *a, **kw)

    monkeypatch.setattr(kerasmer.data, "make_dataset", make_dataset)
    monkeypatch.setattr(kerasmer.data, "fit_normalization", fit_normalization)
    monkeypatch.setattr(keras.Model, "fit", fit)
    monkeypatch.setattr(keras.Model, "predict", predict)
    monkeypatch.setattr(keras.Model, "evaluate", evaluate)

    cfg = RunConfig(model="learnet", data={"casme2": str(synthetic_root)}, recipe="shallow",
                    recipe_overrides={"epochs": 3, "batch_size": 8, "plateau_patience": 1,
                                      "early_stopping_patience": 5},
                    input_shape=SHAPE, folds=["01", "02"], output_dir=str(tmp_path / "run"), deterministic=False)
    result = run(cfg, progress=False, log=lambda s: None)
    assert [f.name for f in result.folds] == ["01", "02"]

    # Split the event stream into folds: each fold ends with its one predict.
    per_fold, current = [], []
    for ev in events:
        current.append(ev)
        if ev[0] == "predict":
            per_fold.append(current)
            current = []
    assert len(per_fold) == 2 and not current
    assert len(norm_calls) == 2
    for fold, evs, norm in zip(result.folds, per_fold, norm_calls):
        test = {f"{s}/{c}" for s, c in zip(fold.clip_subjects, fold.clips)}
        train, val = set(fold.train_clips), set(fold.val_clips)
        assert fold.test_subjects == [fold.name]
        assert not set(fold.val_subjects) & set(fold.train_subjects)
        assert fold.name not in fold.val_subjects + fold.train_subjects
        assert val and not (test & (train | val)) and not (train & val)
        fits = [e for e in evs if e[0] == "fit"]
        assert len(fits) == fold.epochs_run
        assert [e[1] for e in evs if e[0] == "evaluate"] == [val] * fold.epochs_run
        for _, x, v in fits:
            assert x == train, "each epoch trains on exactly the training subjects' clips"
            assert v == val, "validation is exactly the validation subjects' clips"
        assert evs[-1] == ("predict", test, set())
        assert norm == train, "normalisation statistics come from training clips only"
        # The evaluated epoch is the best validation epoch, and the report says which it was.
        assert fold.evaluated_epoch == int(np.argmin(fold.history["val_loss"])) + 1
        assert "validation subjects only" in fold.selection
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [f["evaluated_epoch"] for f in metrics["folds"]] == [f.evaluated_epoch for f in result.folds]
    report = (tmp_path / "run" / "report.md").read_text()
    assert report.startswith("Subject-independent evaluation")
    assert "evaluated epoch" in report


def _perturb(df, rows, donors):
    """Give ``rows`` the frames of ``donors`` and rotate their labels."""
    df = df.copy()
    cols = ["frame_paths", "frame_numbers", "onset", "apex", "offset"]
    for r, d in zip(rows, np.resize(donors, len(rows))):
        for c in cols:
            df.at[df.index[r], c] = df.iloc[d][c]
    classes = sorted(df["emotion"].unique())
    df.loc[df.index[rows], "emotion"] = [classes[(classes.index(e) + 1) % len(classes)]
                                         for e in df.iloc[rows]["emotion"]]
    return df


def test_changing_the_test_subject_changes_nothing_in_training(synthetic_df):
    df = synthetic_df
    fold = loso_folds(df, seed=0)[0]
    names = sorted(df["emotion"].unique())
    recipe = get_recipe("shallow", epochs=2, batch_size=8, plateau_patience=0)

    def train(frame):
        spec = TrainSpec(model="learnet", class_names=names, recipe=recipe, input_shape=SHAPE)
        model, res = FoldTrainer(spec, log=lambda s: None).train(frame, fold, seed=3)
        return res, model.get_weights()

    base, w_base = train(df)
    moved, w_moved = train(_perturb(df, fold.test, fold.train))
    assert moved.evaluated_epoch == base.evaluated_epoch
    for key in base.history:
        np.testing.assert_allclose(moved.history[key], base.history[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(w_moved, w_base):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert moved.clips == base.clips and not np.array_equal(moved.y_true, base.y_true)

    # Sensitivity: the same change to the validation subjects does show up.
    val_moved, _ = train(_perturb(df, fold.val, fold.train))
    assert not np.allclose(val_moved.history["val_loss"], base.history["val_loss"], rtol=1e-4)
