"""Recipes match their papers' settings, overrides work field by field, configs load and reject bad input."""

import json

import keras
import numpy as np
import pytest

from kerasmer.training.config import RunConfig, load_config, save_config
from kerasmer.training.recipes import (
    RECIPES, StepDecay, WarmupCosine, apply_kernel_init, get_recipe, list_recipes, make_optimizer,
)


def test_paper_recipes_have_the_issue_settings():
    r = get_recipe("larnet")
    assert (r.optimizer, r.nesterov, r.learning_rate, r.momentum, r.weight_decay, r.batch_size, r.iterations) == (
        "sgd", True, 0.01, 0.9, 1e-4, 64, 12_000)
    r = get_recipe("meranet")
    assert (r.optimizer, r.schedule, r.batch_size, r.epochs, r.kernel_init) == ("adam", "warmup_cosine", 8, 100,
                                                                               "xavier")
    assert r.resolved_warmup_steps() == 2000  # untuned rule 2 / (1 - 0.999)
    r = get_recipe("micro_attention")
    assert (r.optimizer, r.momentum, r.schedule, r.step_epochs, r.step_factor) == ("sgd", 0.9, "step", 10, 0.1)
    r = get_recipe("learnet")
    assert (r.optimizer, r.learning_rate, r.batch_size, r.epochs) == ("sgd", 1e-3, 25, 100)
    r = get_recipe("shallow")
    assert (r.optimizer, r.learning_rate, r.schedule, r.plateau_factor, r.batch_size, r.epochs) == (
        "adam", 1e-3, "plateau", 0.5, 32, 100)
    assert r.early_stopping_patience is not None
    assert set(list_recipes()) == {"larnet", "meranet", "micro_attention", "learnet", "shallow"}


def test_iterations_convert_to_epochs_with_steps_per_epoch():
    r = get_recipe("larnet")
    assert r.resolve_epochs(100) == 120
    assert r.resolve_epochs(7) == 1715  # ceil(12000 / 7): never fewer steps than the paper
    assert get_recipe("larnet", iterations=10).resolve_epochs(4) == 3
    assert get_recipe("learnet").resolve_epochs(3) == 100


def test_overrides_and_bad_names():
    r = get_recipe("learnet", epochs=3, batch_size=None)
    assert r.epochs == 3 and r.batch_size == 25 and RECIPES["learnet"].epochs == 100
    with pytest.raises(ValueError, match="Unknown recipe 'lernet'.*'learnet'"):
        get_recipe("lernet")
    with pytest.raises(ValueError, match="unknown field.*'epoch'"):
        get_recipe("learnet", epoch=3)
    with pytest.raises(ValueError, match="schedule"):
        get_recipe("learnet", schedule="linear")
    # values from YAML or the command line get the field's type ("1e-4" is a string to YAML 1.1)
    r = get_recipe("larnet", weight_decay="1e-4", iterations="100", nesterov="false")
    assert (r.weight_decay, r.iterations, r.nesterov) == (1e-4, 100, False)
    with pytest.raises(ValueError, match="field 'epochs' got 2.5, which is not a valid integer"):
        get_recipe("learnet", epochs=2.5)
    with pytest.raises(ValueError, match="field 'learning_rate' got 'fast'"):
        get_recipe("learnet", learning_rate="fast")


def test_step_decay_divides_by_ten_every_ten_epochs():
    s = StepDecay(0.01, steps_per_epoch=5, every_epochs=10, factor=0.1)
    lrs = [float(s(step)) for step in (0, 49, 50, 99, 100)]
    np.testing.assert_allclose(lrs, [0.01, 0.01, 0.001, 0.001, 0.0001], rtol=1e-5)
    opt = make_optimizer(get_recipe("micro_attention"), steps_per_epoch=5, epochs=30)
    assert isinstance(opt, keras.optimizers.SGD) and opt.momentum == 0.9


def test_warmup_cosine_rises_linearly_then_anneals_to_zero():
    s = WarmupCosine(1e-3, total_steps=100, warmup_steps=10)
    lr = np.array([float(s(t)) for t in range(101)])
    assert lr[0] == pytest.approx(1e-4, rel=1e-4)
    assert np.all(np.diff(lr[:10]) > 0)
    assert lr[9] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 9 / 100)), rel=1e-4)
    assert lr[100] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(lr[10:]) < 0)


def test_optimizer_settings_reach_keras():
    opt = make_optimizer(get_recipe("larnet"), steps_per_epoch=10, epochs=5)
    assert isinstance(opt, keras.optimizers.SGD) and opt.nesterov and opt.weight_decay == pytest.approx(1e-4)
    opt = make_optimizer(get_recipe("meranet"), steps_per_epoch=10, epochs=5)
    assert isinstance(opt, keras.optimizers.Adam) and isinstance(opt._learning_rate, WarmupCosine)


def test_xavier_init_redraws_only_non_glorot_kernels():
    inp = keras.Input((4,))
    x = keras.layers.Dense(3, kernel_initializer="zeros", name="zero")(inp)
    out = keras.layers.Dense(2, name="glorot")(x)
    model = keras.Model(inp, out)
    before = model.get_layer("glorot").kernel.numpy().copy()
    assert apply_kernel_init(model, "xavier") == ["zero"]
    assert np.abs(model.get_layer("zero").kernel.numpy()).sum() > 0
    np.testing.assert_array_equal(model.get_layer("glorot").kernel.numpy(), before)
    assert apply_kernel_init(model, "keras") == []


def test_config_round_trip_yaml_and_json(tmp_path):
    (tmp_path / "run.yaml").write_text(
        "model: learnet\nprotocol: kfold\nn_splits: 3\nrecipe: shallow\nrecipe_overrides: {epochs: 2}\n"
        f"output_dir: {tmp_path / 'out'}\n")
    cfg = load_config(tmp_path / "run.yaml", seed=5)
    assert (cfg.protocol, cfg.n_splits, cfg.seed, cfg.recipe_overrides) == ("kfold", 3, 5, {"epochs": 2})
    path = save_config(cfg, tmp_path / "out", extra={"tensorflow": "x"})
    assert json.loads(path.read_text())["environment"] == {"tensorflow": "x"}
    assert load_config(path).to_dict() == cfg.to_dict()


@pytest.mark.parametrize("field, value, match", [
    ("model", "learnett", "Unknown model 'learnett'"),
    ("recipe", "adamw", "Unknown recipe 'adamw'"),
    ("protocol", "losoo", "unknown protocol 'losoo'"),
    ("strategy", "tpu", "unknown strategy 'tpu'"),
    ("recipe_overrides", {"lr": 1}, "unknown field"),
])
def test_config_rejects_unknown_names(field, value, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(**{field: value})


def test_config_file_errors_name_the_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("modle: learnet\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*unknown config field.*'modle'"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="hde.*exactly two datasets"):
        RunConfig(protocol="hde", data={"casme2": "x"})
