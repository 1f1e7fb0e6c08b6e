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
