"""Recipes match their papers' settings, overrides work field by field, configs load and reject bad input."""

import json

import keras
import numpy as np
import pytest

from kerasmer.training.config import RunConfig, load_config, save_config
from kerasmer.training.recipes import (
    RECIPES, StepDecay, WarmupCosine, apply_kernel_init, get_recipe, list_recipes, make_optimizer, source_table,
    sources_markdown,
)


def test_paper_recipes_have_the_issue_settings():
    r = get_recipe("larnet")
    assert (r.optimizer, r.nesterov, r.learning_rate, r.momentum, r.weight_decay, r.batch_size, r.iterations) == (
        "sgd", True, 0.01, 0.9, 1e-4, 64, 12_000)
    r = get_recipe("meranet")
    assert (r.optimizer, r.schedule, r.batch_size, r.epochs, r.kernel_init) == ("adam", "warmup_cosine", 8, 100,
                                                                               "xavier")
    assert r.learning_rate == 0.1  # §4.3 "The learning rate is initialized to 0.1" (issue 13, finding 1)
    assert r.resolved_warmup_steps() == 2000  # untuned rule 2 / (1 - 0.999)
    r = get_recipe("micro_attention")
    assert (r.optimizer, r.momentum, r.schedule, r.step_epochs, r.step_factor) == ("sgd", 0.9, "step", 10, 0.1)
    r = get_recipe("learnet")
    assert (r.optimizer, r.learning_rate, r.batch_size, r.epochs) == ("sgd", 1e-3, 25, 100)
    assert r.momentum == 0.9 and r.sources["momentum"].startswith("inferred")  # MATLAB sgdm (finding 4)
    r = get_recipe("shallow")
    assert (r.optimizer, r.learning_rate, r.schedule, r.plateau_factor, r.batch_size, r.epochs) == (
        "adam", 1e-3, "plateau", 0.5, 32, 100)
    assert r.early_stopping_patience is not None
    assert set(list_recipes()) == {"larnet", "meranet", "micro_attention", "micro_attention_pretrain", "learnet",
                                   "quickstart", "shallow"}


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


def test_warmup_cosine_rises_linearly_to_the_peak_then_anneals_to_zero():
    s = WarmupCosine(1e-3, total_steps=100, warmup_steps=10)
    lr = np.array([float(s(t)) for t in range(101)])
    assert lr[0] == pytest.approx(1e-4, rel=1e-4)
    assert np.all(np.diff(lr[:10]) > 0)
    assert lr[9] == pytest.approx(1e-3, rel=1e-5) and lr.max() == pytest.approx(1e-3, rel=1e-5)  # end of warm-up
    assert lr[100] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(lr[10:]) < 0)


@pytest.mark.parametrize("steps_per_epoch", [12, 25, 47])
def test_meranet_schedule_reaches_its_peak_whatever_the_steps_per_epoch(steps_per_epoch):
    """Issue 13, finding 1: warm-up times cosine peaked at 0.16x, 0.33x and 0.62x of 0.1."""
    r = get_recipe("meranet")
    total = steps_per_epoch * r.epochs
    s = make_optimizer(r, steps_per_epoch=steps_per_epoch, epochs=r.epochs)._learning_rate
    lr = np.array([float(s(t)) for t in range(total + 1)])
    warmup = r.resolved_warmup_steps(total)
    assert warmup == total // 10  # the untuned 2,000 steps capped at warmup_fraction of the fold
    assert lr.max() == pytest.approx(0.1, rel=1e-5) and int(lr.argmax()) == warmup - 1
    assert lr[-1] == pytest.approx(0.0, abs=1e-9) and lr[total - 1] < 1e-5
    assert np.all(np.diff(lr[warmup:]) <= 0)  # cosine annealing from the peak down to 0


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


# ----------------------------------------------------------------- issue 13: paper fidelity


@pytest.mark.parametrize("protocol,expected", [
    ("loso", (10, 1e-3, 5e-4)), ("kfold", (10, 1e-3, 5e-4)), (None, (10, 1e-3, 5e-4)),
    ("megc_composite", (8, 1e-3, 5e-6)),  # the paper's CDE
    ("hde", (10, 1e-4, 3e-2)),
])
def test_micro_attention_recipe_per_protocol(protocol, expected):
    r = get_recipe("micro_attention", protocol)
    assert (r.batch_size, r.learning_rate, r.weight_decay) == expected
    assert (r.optimizer, r.momentum, r.schedule, r.step_epochs, r.step_factor) == ("sgd", 0.9, "step", 10, 0.1)
    assert r.balance == "oversample"  # 'resampled according to the one having largest size'
    assert r.augment["probability"] == 0.5
    if protocol == "megc_composite":
        assert r.augment["corner_crop"] == pytest.approx(224 / 240) and r.augment["rotation"] == 0
    elif protocol == "hde":
        assert "corner_crop" not in r.augment and r.augment["rotation"] == 8.0
        assert r.augment["color_shift"] * 255 == pytest.approx(20)
    else:  # LOSO: 'the data augmentation methods mentioned above are together used'
        assert r.augment["corner_crop"] == pytest.approx(224 / 240) and r.augment["rotation"] == 8.0
    assert get_recipe("micro_attention", protocol, batch_size=4).batch_size == 4  # overrides after the variant
    assert r.protocol == (protocol if protocol in ("megc_composite", "hde") else None)


def test_micro_attention_pretraining_recipe():
    r = get_recipe("micro_attention_pretrain")
    assert (r.optimizer, r.momentum, r.batch_size, r.learning_rate, r.schedule, r.step_epochs, r.step_factor) == (
        "sgd", 0.9, 50, 0.01, "step", 20, 0.1)
    assert (r.augment["rotation"], r.augment["smoothing"], r.augment["probability"]) == (10.0, 6, 0.5)


def test_shallow_recipe_oversamples_with_the_papers_augmentation():
    from kerasmer.data import SHALLOW_AUGMENT

    r = get_recipe("shallow")
    assert r.balance == "oversample" and r.augment == SHALLOW_AUGMENT
    assert all(r.sources[f].startswith("paper §3") for f in ("optimizer", "learning_rate", "plateau_factor",
                                                            "batch_size", "epochs", "augment", "balance"))


def test_every_field_has_a_source_and_no_paper_value_is_called_a_default():
    for name in list_recipes():
        for protocol in [None, *RECIPES[name].variants]:
            for field, _, source in source_table(name, protocol):
                assert source.split(":")[0].split(" §")[0] in ("paper", "kerasmer default", "inferred"), (
                    name, protocol, field, source)
    paper_fields = {"meranet": ("learning_rate", "batch_size", "epochs", "kernel_init"),
                    "micro_attention": ("learning_rate", "batch_size", "weight_decay", "momentum", "augment",
                                        "balance")}
    for name, fields in paper_fields.items():
        for field in fields:
            assert RECIPES[name].sources[field].startswith("paper"), (name, field)


def test_docs_and_cli_show_the_recipes_sources(capsys):
    from pathlib import Path

    from kerasmer.cli.train import cmd_recipes

    docs = (Path(__file__).parents[2] / "docs" / "training.md").read_text()
    assert sources_markdown() in docs, "regenerate docs/training.md's tables with sources_markdown()"
    cmd_recipes(type("Args", (), {"verbose": True})())
    out = capsys.readouterr().out
    for name in list_recipes():
        for protocol in [None, *RECIPES[name].variants]:
            for field, value, source in source_table(name, protocol):
                assert source in out and f"{field:24s} {value:<28s} {source}" in out


def test_augment_and_balance_are_data_options_not_recipe_overrides():
    with pytest.raises(ValueError, match="data_options"):
        get_recipe("shallow", balance=False)


def test_recipe_data_settings_reach_training_batches_only_with_run_options_first(monkeypatch):
    from kerasmer.training import trainer as trainer_mod
    from kerasmer.training.trainer import FoldState, FoldTrainer, TrainSpec

    names = ["negative", "positive", "surprise"]
    spec = TrainSpec("shallow_conv2d_mhsa", names, get_recipe("micro_attention", "hde"))
    every, train = spec.pipeline_options()
    assert train == {"augment": get_recipe("micro_attention", "hde").augment, "balance": "oversample"}
    assert "augment" not in every and "balance" not in every and every["sampler"] == "apex_middle"
    spec = TrainSpec("shallow_conv2d_mhsa", names, get_recipe("micro_attention"), data_options={"balance": False,
                                                                                                "augment": False})
    assert spec.pipeline_options()[1] == {"augment": False, "balance": False}  # the run's data_options win
    from kerasmer.data import SHALLOW_AUGMENT

    spec = TrainSpec("shallow_conv2d_mhsa", names, get_recipe("quickstart"))
    assert spec.pipeline_options()[1] == {"augment": SHALLOW_AUGMENT}  # no recipe setting: the model spec's
    calls = []
    monkeypatch.setattr(trainer_mod.kdata, "make_dataset", lambda df, **kw: calls.append(kw))
    spec = TrainSpec("shallow_conv2d_mhsa", names, get_recipe("micro_attention", "hde"))
    state = FoldState(df=None, fold=None, seed=0)
    state.parts = {"train": "t", "val": "v", "test": "x"}
    state.options, state.train_options = spec.pipeline_options()
    trainer = FoldTrainer(spec)
    for part in ("train", "val", "test"):
        trainer.make_dataset(state, part, training=part == "train", seed=0)
    assert calls[0]["balance"] == "oversample" and calls[0]["augment"]["rotation"] == 8.0 and calls[0]["training"]
    for kw in calls[1:]:  # validation and test: never augmented nor resampled
        assert not kw["training"] and "augment" not in kw and "balance" not in kw


def test_an_epoch_override_replaces_the_papers_iteration_budget():
    # LARNet's recipe counts 12,000 iterations; "--epochs 10" used to be ignored by resolve_epochs.
    assert get_recipe("larnet").iterations == 12000
    r = get_recipe("larnet", epochs=10)
    assert r.iterations is None and r.resolve_epochs(steps_per_epoch=2) == 10
    assert get_recipe("larnet", epochs=None).iterations == 12000  # an unset CLI flag keeps the paper's
    with pytest.raises(ValueError, match="set epochs .* or iterations .*not both"):
        get_recipe("larnet", epochs=10, iterations=500)


def test_meranet_recipe_augments_with_the_papers_flip_only():
    # MERANet §4.2: "each sample is horizontally flipped with 0.5 probability", and nothing else
    from kerasmer.data.pipeline.augment import resolve_augment

    settings = resolve_augment(get_recipe("meranet").augment, True)
    assert settings["flip"] is True
    assert all(settings[k] == 0 for k in settings if k not in ("flip", "probability"))
    assert "horizontally flipped" in get_recipe("meranet").sources["augment"]
