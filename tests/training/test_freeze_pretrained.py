"""A recipe's ``freeze_pretrained``: LARNet froze its ImageNet-pretrained stages 1-2 (Hashmi et al., Sensors
2021, §3), so the ``larnet`` recipe freezes them when ``--init-from`` initialised them, and says so."""

import json

import keras
import numpy as np
import pytest

import kerasmer
from kerasmer.evaluation import loso_folds
from kerasmer.models.transfer import freeze_initialised
from kerasmer.training import FoldTrainer, TrainSpec
from kerasmer.training.recipes import get_recipe

from .conftest import SHAPE


def _staged(seed=0, classes=3, stages=(1, 2, 3)):
    """A tiny model with LARNet's layer naming: ``stage{k}_*`` layers, then a head."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for k in stages:
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"stage{k}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"stage{k}_bn")(x)
        x = keras.layers.ReLU(name=f"stage{k}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="predictions")(x))


def _transfer(tmp_path, source, recipe="larnet", **overrides):
    source.save(tmp_path / "source.keras")
    spec = TrainSpec(model="larnet", class_names=["a", "b", "c"], recipe=get_recipe(recipe, **overrides),
                     init_from=str(tmp_path / "source.keras"))
    messages, model = [], _staged(seed=1)
    return model, FoldTrainer(spec, log=messages.append).transfer(model), messages


def test_larnet_recipe_freezes_initialised_stages_1_and_2(tmp_path):
    model, record, messages = _transfer(tmp_path, _staged(seed=2, classes=5))
    assert get_recipe("larnet").freeze_pretrained == ("stage1_*", "stage2_*")
    assert record["freeze_pretrained"]["patterns"] == ["stage1_*", "stage2_*"]
    assert record["freeze_pretrained"]["recipe"] == "larnet"
    frozen = {layer.name for layer in model.layers if not layer.trainable}
    assert frozen == {f"stage{k}_{t}" for k in (1, 2) for t in ("conv", "bn", "relu")}
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"stage3_conv", "stage3_bn", "predictions"}
    assert any("froze 6 layers of ['stage1_*', 'stage2_*']" in m and "--init-from" in m for m in messages)
    json.dumps(record)  # the fold's transfer record goes into result.json and the report


def test_a_stage_the_source_did_not_initialise_stays_trainable(tmp_path):
    model, record, messages = _transfer(tmp_path, _staged(seed=2, stages=(1, 3)))
    done = record["freeze_pretrained"]
    assert done["patterns"] == ["stage1_*"] and "stage2_*" in done["kept"]
    assert model.get_layer("stage2_conv").trainable and not model.get_layer("stage1_conv").trainable
    assert any("stage2_* stays trainable" in m for m in messages)


def test_no_freezing_without_the_recipe_field_or_when_turned_off(tmp_path):
    for recipe, overrides in (("quickstart", {}), ("larnet", {"freeze_pretrained": ""})):
        model, record, _ = _transfer(tmp_path, _staged(seed=2), recipe=recipe, **overrides)
        assert "freeze_pretrained" not in record and all(layer.trainable for layer in model.layers)


def test_freeze_initialised_needs_every_weighted_layer_matched():
    model = _staged()
    done = freeze_initialised(model, ("stage1_*", "stage2_*", "stage9_*"), ["stage1_conv", "stage1_bn", "stage2_bn"])
    assert done["patterns"] == ["stage1_*"] and done["frozen"] == ["stage1_conv", "stage1_bn", "stage1_relu"]
    assert "1 of 2 layers" in done["kept"]["stage2_*"] and "no layer" in done["kept"]["stage9_*"]


def test_end_to_end_frozen_groups_keep_their_weights(synthetic_df, tmp_path):
    # The whole fold (build -> init-from -> freeze -> fit -> result) on LEARNet at 32x32, with the learnet recipe
    # given a freeze_pretrained: the frozen groups end exactly as loaded; the record reaches the FoldResult.
    names = sorted(synthetic_df["emotion"].unique())
    source = kerasmer.build_model("learnet", num_classes=len(names), input_shape=tuple(SHAPE))
    source.save(tmp_path / "source.keras")
    spec = TrainSpec(model="learnet", class_names=names, input_shape=SHAPE, init_from=str(tmp_path / "source.keras"),
                     recipe=get_recipe("learnet", epochs=1, batch_size=8, learning_rate=0.1,
                                       freeze_pretrained="conv1,lateral_conv2_*"))
    messages = []
    model, res = FoldTrainer(spec, log=messages.append).train(synthetic_df, loso_folds(synthetic_df, seed=0)[0])
    done = res.transfer["freeze_pretrained"]
    assert done["patterns"] == ["conv1", "lateral_conv2_*"] and len(done["frozen"]) == 5
    assert any("recipe learnet: froze 5 layers" in m for m in messages)
    for name in done["frozen"]:
        for a, b in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(model.get_layer("conv5").get_weights(),
                                                        source.get_layer("conv5").get_weights()))


@pytest.mark.large  # LARNet itself (88M weights) at 64x64: build, save, init-from, freeze
def test_real_larnet_recipe_freezes_stages_1_and_2(tmp_path):
    source = kerasmer.build_model("larnet", num_classes=7, input_shape=(64, 64, 3))
    source.save_weights(tmp_path / "larnet.weights.h5")
    spec = TrainSpec(model="larnet", class_names=list("abcdefg"), recipe=get_recipe("larnet"),
                     init_from=str(tmp_path / "larnet.weights.h5"))
    model = kerasmer.build_model("larnet", num_classes=7, input_shape=(64, 64, 3))
    record = FoldTrainer(spec, log=lambda m: None).transfer(model)
    assert record["freeze_pretrained"]["patterns"] == ["stage1_*", "stage2_*"]
    paper_frozen = kerasmer.build_model("larnet", num_classes=7, input_shape=(64, 64, 3), freeze_stages=True)
    def trainable(m):
        return sum(int(np.prod(w.shape)) for w in m.trainable_weights)

    assert trainable(model) == trainable(paper_frozen) < trainable(source) // 5
    assert not any(layer.trainable for layer in model.layers if layer.name.startswith(("stage1_", "stage2_")))
