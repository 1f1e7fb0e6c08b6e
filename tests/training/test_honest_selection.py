"""Honest selection, proven: a fold's test subjects reach nothing but the final predict.

Two proofs:

1. an audit of every dataset built, fitted on, validated on, normalised with and
   predicted on during a run: the test subject's clips appear only in the one
   dataset passed to ``predict``; validation clips come from training subjects
   that are not trained on; the evaluated epoch is the best *validation* epoch;
2. a counterfactual (:func:`honest_check.assert_test_subject_inert`): making the
   test subject's clips poisonous (their loss rising instead of falling, the
   table's label counts and pixel statistics changed) leaves every
   training-side artefact the same (class weights, normalisation, history with
   the learning rate, chosen epoch, final weights), while the same poison given
   to the validation subject does change training, and each injected leak makes
   the check fail (``test_honest_selection_mutations.py``).
"""

import dataclasses
import json

import keras
import numpy as np
import pytest

import kerasmer.data
from kerasmer.evaluation import loso_folds
from kerasmer.training import RunConfig, run
from kerasmer.training import FoldTrainer, TrainSpec
from kerasmer.training import feed as feed_module
from kerasmer.training import trainer as trainer_module
from kerasmer.training.recipes import get_recipe

from .conftest import SHAPE
from .honest_check import RECIPE_OVERRIDES, assert_test_subject_inert, poisoned_tables, train_artefacts


def _keys(df):
    return set(df["subject"].astype(str) + "/" + df["clip"].astype(str))


def test_test_subjects_reach_only_predict(synthetic_root, tmp_path, monkeypatch):
    built, events, norm_calls = {}, [], []
    real_make, real_norm = kerasmer.data.make_dataset, kerasmer.data.fit_normalization
    real_fit, real_predict, real_eval = keras.Model.fit, keras.Model.predict, keras.Model.evaluate
    real_single_pass, real_reader = trainer_module.single_pass, feed_module.reader

    def make_dataset(df, **kw):
        ds = real_make(df, **kw)
        built[id(ds)] = (_keys(df), kw.get("training"))
        events.append(("build", _keys(df), set()))
        return ds

    def single_pass(ds):  # the trainer passes fit a dataset derived from a built one: the same clips
        out, steps = real_single_pass(ds)
        built[id(out)] = built[id(ds)]
        return out, steps

    def reader(ds, steps, **kw):  # or one that reads a built one's batches, epoch by epoch: the same clips
        out = real_reader(ds, steps, **kw)
        built[id(out)] = built[id(ds)]
        return out

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
    monkeypatch.setattr(trainer_module, "single_pass", single_pass)
    monkeypatch.setattr(trainer_module, "reader", reader)  # the validation set's
    monkeypatch.setattr(feed_module, "reader", reader)  # the training set's, in EpochFeed
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
        # A test clip is in one dataset only, the one predicted (a direct ``model(x)`` on it would need another).
        assert [e[1] for e in evs if e[0] == "build" and e[1] & test] == [test]
        assert norm == train, "normalisation statistics come from training clips only"
        # The evaluated epoch is the best validation epoch, and the report says which it was.
        assert fold.evaluated_epoch == int(np.argmin(fold.history["val_loss"])) + 1
        assert "validation subjects only" in fold.selection
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [f["evaluated_epoch"] for f in metrics["folds"]] == [f.evaluated_epoch for f in result.folds]
    report = (tmp_path / "run" / "report.md").read_text()
    assert report.startswith("Subject-independent evaluation")
    assert "evaluated epoch" in report


def test_changing_the_test_subject_changes_nothing_in_training(synthetic_df):
    df = synthetic_df
    fold = loso_folds(df, seed=0)[0]
    names = sorted(df["emotion"].unique())
    spec = TrainSpec(model="learnet", class_names=names, recipe=get_recipe("shallow", **RECIPE_OVERRIDES),
                     input_shape=SHAPE)
    honest = assert_test_subject_inert(df, fold, spec)
    assert len(honest["history"]["loss"]) == RECIPE_OVERRIDES["epochs"], "no early stop hid later epochs"

    # Sensitivity: the same poison given to the validation subject does change training.
    on_val = poisoned_tables(df, dataclasses.replace(fold, test=fold.val))["poison"]
    moved = train_artefacts(on_val, fold, spec)
    assert not np.allclose(moved["history"]["val_loss"], honest["history"]["val_loss"], rtol=1e-4)
