"""The fold trainer's steps and hooks, the model spec reaching training, and one run path for every entry point."""

import keras
import numpy as np
import pytest

import kerasmer
import kerasmer.data
from kerasmer.cli.main import build_parser, main
from kerasmer.data import SHALLOW_AUGMENT
from kerasmer.evaluation import PROTOCOLS, loso_folds
from kerasmer.training import FoldTrainer, KeepModel, RunConfig, TrainerHook, TrainSpec, get_recipe, run

from .conftest import SHAPE


class _Stop(Exception):
    """Raised by a wrapped data function once it has seen what the test needs."""


def test_kerasmer_train_feeds_meranet18_the_papers_centred_sampler(synthetic_root, tmp_path, monkeypatch):
    seen = []

    def fit_normalization(df, **options):  # the first data call of a fold: record its options and stop
        seen.append(options)
        raise _Stop

    monkeypatch.setattr(kerasmer.data, "fit_normalization", fit_normalization)
    with pytest.raises(_Stop):
        main(["train", "--data", f"casme2={synthetic_root}", "--model", "meranet18", "--epochs", "1",
              "--out", str(tmp_path / "run"), "--verbose", "0"])
    assert seen and seen[0]["modality"] == "clip" and seen[0]["sampler"] == "centered"
    assert seen[0]["input_shape"] == kerasmer.model_info("meranet18").input_shape


def test_spec_options_reach_the_right_splits():
    names = ["negative", "positive", "surprise"]
    every, train = TrainSpec("shallow_conv3d_mhsa", names, get_recipe("shallow")).pipeline_options()
    assert "augment" not in every and train["augment"] == SHALLOW_AUGMENT  # training batches only
    every, train = TrainSpec("learnet", names, get_recipe("learnet"), input_shape=(32, 32, 3)).pipeline_options()
    assert every == {"modality": "dynamic_image", "input_shape": (32, 32, 3)}
    assert train == {"augment": get_recipe("learnet").augment}  # LEARNet §IV's rotation/equalisation/flip pool
    # the run's data_options win over the model spec
    every, _ = TrainSpec("meranet18", names, get_recipe("meranet"),
                         data_options={"sampler": "uniform", "balance": True}).pipeline_options()
    assert every["sampler"] == "uniform"


def test_a_model_without_recipe_gets_its_papers_recipe():
    assert RunConfig(model="meranet18").recipe == "meranet"
    assert RunConfig(model="larnet").recipe == "larnet"
    assert RunConfig(model="learnet", recipe="shallow").recipe == "shallow"


class _Recorder(TrainerHook):
    def __init__(self):
        self.events = []

    def on_fold_begin(self, trainer, state):
        self.events.append(("begin", len(state.parts["train"]), state.epochs))

    def on_model_built(self, trainer, state):
        self.events.append(("built", state.model.name))

    def on_epoch_end(self, trainer, state, epoch, logs):
        self.events.append(("epoch", epoch, "val_loss" in logs))

    def on_fold_end(self, trainer, state, result):
        self.events.append(("end", result.name))


class _LastEpoch(FoldTrainer):
    """A step overridden by a subclass: evaluate the last epoch instead of the best validation one."""

    def select(self, state):
        state.evaluated_epoch, state.selection = len(state.history["loss"]), "last epoch (subclass)"


def test_hooks_run_after_their_steps_and_steps_can_be_overridden(synthetic_df):
    names = sorted(synthetic_df["emotion"].unique())
    fold = loso_folds(synthetic_df, seed=0)[0]
    spec = TrainSpec("learnet", names, get_recipe("shallow", epochs=3, batch_size=8, early_stopping_patience=None),
                     input_shape=SHAPE)
    rec, keep = _Recorder(), KeepModel()
    model, result = _LastEpoch(spec, hooks=[rec, keep], log=lambda s: None).train(synthetic_df, fold, seed=1)
    assert [e[0] for e in rec.events] == ["begin", "built", "epoch", "epoch", "epoch", "end"]
    assert rec.events[0] == ("begin", len(fold.train), 3)
    assert all(e[2] for e in rec.events if e[0] == "epoch")
    assert result.evaluated_epoch == 3 and result.selection == "last epoch (subclass)"
    assert keep.model is model and keep.result is result


def test_run_takes_hooks_and_keeps_the_last_model(synthetic_root, tmp_path):
    keep = KeepModel()
    config = RunConfig(model="learnet", data={"casme2": str(synthetic_root)}, recipe="quickstart",
                       recipe_overrides={"epochs": 1, "batch_size": 8}, input_shape=SHAPE, folds=["02"],
                       output_dir=str(tmp_path / "run"), deterministic=False)
    result = run(config, hooks=[keep], progress=False, log=lambda s: None)
    assert [f.name for f in result.folds] == ["02"] and keep.result.name == "02"
    x = np.zeros((1, *SHAPE), "float32")
    assert keep.model(x).shape == (1, len(result.class_names))


def test_unknown_precision_is_rejected_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="'fp64'"):
        RunConfig(precision="fp64", output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    assert RunConfig(precision="bf16").precision == "mixed_bfloat16"


def test_the_protocol_table_drives_help_validation_and_reports():
    help_text = " ".join(a.help or "" for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions)
    for name, protocol in PROTOCOLS.items():
        assert name in help_text and protocol.help in help_text
    with pytest.raises(ValueError, match="hde.*exactly two datasets"):
        RunConfig(protocol="hde", data={"casme2": "x"})
    assert RunConfig(protocol="megc_composite", data={"casme2": "x", "samm": "y"}).scheme == "megc3"
    assert [n for n, p in PROTOCOLS.items() if p.subject_dependent] == ["split"]
    assert keras.config.dtype_policy().name == "float32"


def test_each_epoch_opens_one_iterator_per_dataset(synthetic_df, monkeypatch):
    """Keras 3.15 opens the next epoch's iterator at the end of a ``fit`` over a dataset of known size; with one
    ``fit`` per epoch it was never read (a tf.data graph rewrite and a prefetch each): see ``single_pass``.  And
    the fold's built datasets (augmentation, cache) are opened once per fold, not per epoch: ``EpochFeed``."""
    import tensorflow as tf

    opened, per_fit, built, heavy = [], [], set(), []
    real_iter, real_fit, real_make = tf.data.Dataset.__iter__, keras.Model.fit, kerasmer.data.make_dataset

    def counting_iter(self):
        opened.append(1)
        if id(self) in built or id(getattr(self, "_input_dataset", None)) in built:  # itself, or repeated
            heavy.append(len(per_fit))
        return real_iter(self)

    def make_dataset(df, **kw):
        ds = real_make(df, **kw)
        built.add(id(ds))
        return ds

    def fit(self, *args, **kwargs):
        start = len(opened)
        history = real_fit(self, *args, **kwargs)
        per_fit.append(len(opened) - start)
        return history

    monkeypatch.setattr(tf.data.Dataset, "__iter__", counting_iter)
    monkeypatch.setattr(keras.Model, "fit", fit)
    monkeypatch.setattr(kerasmer.data, "make_dataset", make_dataset)
    names = sorted(synthetic_df["emotion"].unique())
    fold = loso_folds(synthetic_df, seed=0)[0]
    spec = TrainSpec("learnet", names, get_recipe("shallow", epochs=3, batch_size=4, early_stopping_patience=None),
                     input_shape=SHAPE)
    _, result = FoldTrainer(spec, log=lambda s: None).train(synthetic_df, fold, seed=1)
    assert per_fit == [2, 2, 2]  # the training set's and the validation set's, once each
    # the validation set's and the training set's own iterators: once, before the first epoch's fit returns;
    # none during the later epochs; then the test set's, after the last (tracing predict, then predict)
    assert heavy[:2] == [0, 0] and heavy[2:] and set(heavy[2:]) == {3}
    assert result.evaluated_epoch >= 1


class _PerEpochDatasets(FoldTrainer):
    def uses_feed(self, state):
        return False  # a dataset per epoch, as under a tf.distribute strategy


@pytest.mark.parametrize("options", [{}, {"balance": "oversample"}])
def test_the_epoch_feed_trains_exactly_as_a_dataset_per_epoch(synthetic_df, options, monkeypatch):
    """One iterator across epochs (``EpochFeed``, chunks of 2 epochs here) gives the same batches, so the
    same weights, history and predictions, as a dataset built for each epoch."""
    import functools

    import kerasmer.training.trainer as trainer_module

    # a new iterator every two epochs: the hand-over between chunks is tested too
    monkeypatch.setattr(trainer_module, "EpochFeed", functools.partial(trainer_module.EpochFeed, chunk=2))
    names = sorted(synthetic_df["emotion"].unique())
    fold = loso_folds(synthetic_df, seed=0)[0]
    spec = TrainSpec("learnet", names, get_recipe("shallow", epochs=5, batch_size=4, early_stopping_patience=None),
                     input_shape=SHAPE, data_options=options)
    chunks = []

    class SmallChunks(FoldTrainer):
        def epoch_batches(self, state, epoch):
            out = super().epoch_batches(state, epoch)
            chunks.append(id(state.feed._batches))
            return out

    fed_model, fed = SmallChunks(spec, log=lambda s: None).train(synthetic_df, fold, seed=3)
    per_model, per = _PerEpochDatasets(spec, log=lambda s: None).train(synthetic_df, fold, seed=3)
    assert len(set(chunks)) == 3 and len(chunks) == 5  # epochs 0-1, 2-3, 4
    assert fed.history == per.history
    np.testing.assert_array_equal(fed.probabilities, per.probabilities)
    for a, b in zip(fed_model.get_weights(), per_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert trainer_module.plain_strategy(None)
