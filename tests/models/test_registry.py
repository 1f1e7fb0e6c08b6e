"""Registry behaviour: listing, info, and the errors users see."""

import pytest

import kerasmer
from kerasmer.models.registry import register_model


def test_list_models_pattern():
    assert "learnet" in kerasmer.list_models()
    assert kerasmer.list_models("learn*") == ["learnet"]
    assert kerasmer.list_models("no-such-*") == []


def test_model_info_fields():
    info = kerasmer.model_info("learnet")
    assert info.input_shape == (112, 112, 3)
    assert info.modality == "dynamic_image"
    assert info.num_classes == 8
    assert "LEARNet" in info.paper
    assert info.paper_params == 1_866_632


def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match="'learnet'"):
        kerasmer.build_model("lernet")
    with pytest.raises(ValueError, match="Unknown model"):
        kerasmer.model_info("zzz")


def test_unknown_override_is_named():
    with pytest.raises(TypeError, match="'widht'"):
        kerasmer.build_model("learnet", widht=3)


def test_overrides_and_defaults():
    model = kerasmer.build_model("learnet", num_classes=5, input_shape=(64, 64, 3), dropout=0.1)
    assert model.output_shape == (None, 5)
    assert model.input_shape == (None, 64, 64, 3)


def test_register_rejects_bad_modality_and_duplicates():
    with pytest.raises(ValueError, match="modality"):
        register_model("x", input_shape=(1,), modality="audio", num_classes=2, paper="-")
    with pytest.raises(ValueError, match="already registered"):
        register_model("learnet", input_shape=(1,), modality="frame", num_classes=2, paper="-")(
            lambda *, num_classes, input_shape: None)


# ----------------------------------------------------------------- the model spec (sampler, augment, recipe)


def test_centred_clip_models_and_default_samplers():
    for name in ("meranet18", "resnet3d18"):  # MERANet §4.2: a 16-frame clip around the apex
        info = kerasmer.model_info(name)
        assert info.sampler == "centered"
        assert info.input_options() == {"modality": "clip", "input_shape": (16, 112, 112, 3), "sampler": "centered"}
        assert info.input_options((8, 32, 32, 3))["input_shape"] == (8, 32, 32, 3)
    learnet = kerasmer.model_info("learnet").input_options()
    assert learnet == {"modality": "dynamic_image", "input_shape": (112, 112, 3)}  # no sampler, no augment
    for name in kerasmer.list_models():
        info = kerasmer.model_info(name)
        if info.modality == "clip":
            assert info.input_options()["sampler"] in ("uniform", "apex_middle", "centered"), name
        else:
            assert info.sampler is None and "sampler" not in info.input_options(), name


def test_shallow_models_carry_their_papers_augmentation():
    from kerasmer.data import DEFAULT_AUGMENT, SHALLOW_AUGMENT

    shallow = kerasmer.list_models("shallow_*")
    assert len(shallow) == 3
    for name in shallow:
        info = kerasmer.model_info(name)
        assert info.augment == SHALLOW_AUGMENT and info.input_options()["augment"] == SHALLOW_AUGMENT
        assert info.input_options()["sampler"] == "apex_middle"  # issue 13: the apex is always token 6
    assert SHALLOW_AUGMENT != DEFAULT_AUGMENT
    for name in set(kerasmer.list_models()) - set(shallow):
        assert kerasmer.model_info(name).augment is None and "augment" not in kerasmer.model_info(name).input_options()


def test_every_model_names_a_known_recipe():
    from kerasmer.training.recipes import RECIPES

    expected = {"learnet": "learnet", "attention56": "larnet", "attention92": "larnet", "emoresnet": "larnet",
                "larnet": "larnet", "resnet3d18": "meranet", "meranet18": "meranet",
                "micro_attention_resnet": "micro_attention"}
    for name in kerasmer.list_models():
        recipe = kerasmer.model_info(name).recipe
        assert recipe in RECIPES, (name, recipe)
        assert recipe == expected.get(name, "shallow" if name.startswith("shallow_") else recipe), name


def test_the_data_pipeline_looks_models_up_in_the_registry():
    from kerasmer.data import model_input_options

    for name in kerasmer.list_models():
        assert model_input_options(name) == kerasmer.model_info(name).input_options()
    assert model_input_options(kerasmer.model_info("meranet18"))["sampler"] == "centered"
    with pytest.raises(ValueError, match="Unknown model 'meranet81'"):
        model_input_options("meranet81")


def test_register_rejects_a_sampler_for_non_clip_models_and_a_bad_augment():
    with pytest.raises(ValueError, match="clip models only"):
        register_model("x", input_shape=(8, 8, 3), modality="frame", num_classes=2, paper="-", sampler="centered")
    with pytest.raises(TypeError, match="augment"):
        register_model("x", input_shape=(2, 8, 8, 3), modality="clip", num_classes=2, paper="-", augment=True)
