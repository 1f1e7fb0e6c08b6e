"""Bad input around training: a diverging loss fails its fold, a second run into a busy run directory refuses."""

import types

import pytest

from kerasmer.core.lock import RunLock, RunLockedError
from kerasmer.training import FoldTrainer, RunConfig, TrainSpec, get_recipe, run
from kerasmer.training.trainer import FoldFailed, divergence_bound

from .conftest import SHAPE

NAMES = ["negative", "positive", "surprise"]


def _state(history):
    return types.SimpleNamespace(fold=types.SimpleNamespace(name="07"), history=history)


def test_a_finite_but_exploding_loss_fails_the_fold_naming_the_learning_rate():
    trainer = FoldTrainer(TrainSpec("learnet", NAMES, get_recipe("learnet")))
    trainer.check_loss(_state({}), 0, {"loss": 1.3, "learning_rate": 0.01})  # a healthy first epoch passes
    trainer.check_loss(_state({"loss": [1.3]}), 1, {"loss": 50.0, "learning_rate": 0.01})  # a spike below 100x
    exploded = r"fold 07: training loss diverged to 4.7e\+19 in epoch 1.*learning rate 1e\+06"
    with pytest.raises(FoldFailed, match=exploded):
        trainer.check_loss(_state({}), 0, {"loss": 4.7e19, "learning_rate": 1e6})
    with pytest.raises(FoldFailed, match=r"diverged to 200 in epoch 3, above the bound 130"):
        trainer.check_loss(_state({"loss": [1.3, 2.0]}), 2, {"loss": 200.0, "learning_rate": 0.5})
    with pytest.raises(FoldFailed, match=r"became nan in epoch 2 \(learning rate 0.01\)"):
        trainer.check_loss(_state({"loss": [1.3]}), 1, {"loss": float("nan"), "learning_rate": 0.01})
    assert divergence_bound(3, 4.7e19) == pytest.approx(1000 * 1.0986, rel=1e-3)  # the absolute bound caps it


def _config(root, out, **overrides):
    fields = dict(model="learnet", data={"casme2": str(root)}, recipe="learnet", input_shape=SHAPE, folds=["01"],
                  recipe_overrides={"epochs": 2, "batch_size": 8}, output_dir=str(out))
    fields.update(overrides)
    return RunConfig(**fields)


def test_a_run_at_learning_rate_1e6_reports_a_failed_fold(synthetic_root, tmp_path):
    config = _config(synthetic_root, tmp_path / "run", recipe_overrides={"epochs": 2, "batch_size": 8,
                                                                         "learning_rate": 1e6})
    result = run(config, progress=False, log=lambda s: None)
    assert not result.folds and list(result.failed) == ["01"]
    assert "diverged" in result.failed["01"] and "learning rate 1e+06" in result.failed["01"]
    assert (tmp_path / "run" / "folds" / "01" / "failed.json").is_file()


def test_a_second_run_into_a_busy_directory_refuses_before_reading_data(synthetic_root, tmp_path):
    out = tmp_path / "run"
    with RunLock(out):
        with pytest.raises(RunLockedError, match=r"is in use by pid \d+ on host .* since "):
            run(_config(synthetic_root, out), progress=False, log=lambda s: None)
    assert not (out / "run.json").exists()


def test_an_input_with_channels_no_reader_makes_is_refused_before_any_data(tmp_path):
    # EmoResNet's paper input is a 32-channel feature map: as a training input it used to fail inside the
    # first fold's normalisation, after the data was written; now the config names the fix at once.
    with pytest.raises(ValueError, match=r"input_shape: 'emoresnet' takes \(32, 32, 32\).*--input-shape 32,32,3"):
        RunConfig(model="emoresnet", output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    assert RunConfig(model="emoresnet", input_shape=[32, 32, 3], output_dir=str(tmp_path / "ok")).input_shape == [32, 32, 3]
