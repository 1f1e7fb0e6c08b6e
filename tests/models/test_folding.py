"""``fold_batch_norms``: the inference graph folds each batch norm into the conv before it, else a ChannelAffine.

The folded model must give the original's inference outputs (up to float rounding), keep layer names, fold
exactly the batch norms whose conv feeds nothing else, and survive a ``.keras`` round trip.  Every registered
model is checked in ``tests/models/test_all_models.py``.
"""

import keras
import numpy as np
import pytest

from kerasmer.layers import ChannelAffine
from kerasmer.models.folding import fold_batch_norms


def randomize_batch_norms(model, seed=0):
    """Give every BN non-trivial statistics and affine so that folding has something to get wrong."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.2, c),
                      "moving_mean": rng.normal(0, 0.2, c), "moving_variance": rng.uniform(0.5, 2.0, c)}
            for w in layer.weights:
                w.assign(values[w.name].astype("float32"))


def _toy():
    inp = keras.Input((12, 12, 3), name="x")
    a = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="c1")(inp)
    a = keras.layers.BatchNormalization(name="bn1")(a)                 # folds into c1
    a = keras.layers.ReLU(name="r1")(a)
    b = keras.layers.Conv2D(8, 3, padding="same", name="c2")(a)        # with a bias
    b = keras.layers.BatchNormalization(name="bn2", center=False)(b)   # folds into c2
    s = keras.layers.Add(name="add")([a, b])
    s = keras.layers.BatchNormalization(name="bn3")(s)                 # after an add: ChannelAffine
    c = keras.layers.Conv2D(8, 1, name="c3")(s)
    d = keras.layers.BatchNormalization(name="bn4")(c)                 # c3 has a second reader: ChannelAffine
    e = keras.layers.Conv2D(8, 1, activation="relu", name="c4")(s)
    e = keras.layers.BatchNormalization(name="bn5", scale=False)(e)    # after a ReLU inside c4: ChannelAffine
    y = keras.layers.Concatenate(name="cat")([c, d, e])
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    y = keras.layers.Dense(4, use_bias=False, name="fc")(y)
    y = keras.layers.BatchNormalization(name="bn6")(y)                 # folds into fc
    return keras.Model(inp, y, name="toy")


def test_folds_exactly_the_foldable_batch_norms():
    keras.utils.set_random_seed(0)
    model = _toy()
    randomize_batch_norms(model)
    folded = fold_batch_norms(model)
    assert folded.folding == {"folded": ["bn1", "bn2", "bn6"], "affine": ["bn3", "bn4", "bn5"]}
    assert [layer.name for layer in folded.layers] == [layer.name for layer in model.layers]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    assert isinstance(folded.get_layer("bn3"), ChannelAffine) and folded.get_layer("c1").use_bias
    x = np.random.default_rng(1).normal(size=(3, 12, 12, 3)).astype("float32")
    want = np.asarray(model(x, training=False))
    np.testing.assert_allclose(np.asarray(folded(x)), want, rtol=1e-5, atol=1e-5)
    # Training-mode BN would use batch statistics: the folded graph matches inference only, so check it
    # is not trivially equal to a training-mode call.
    assert not np.allclose(np.asarray(model(x, training=True)), want, atol=1e-3)


def test_weights_fewer_and_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = _toy()
    randomize_batch_norms(model, seed=3)
    folded = fold_batch_norms(model)
    assert len(folded.weights) < len(model.weights)
    path = tmp_path / "folded.keras"
    folded.save(path)
    again = keras.saving.load_model(path)
    x = np.random.default_rng(2).normal(size=(2, 12, 12, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(folded(x)), rtol=1e-6, atol=1e-6)


def test_without_batch_norms_the_model_is_returned():
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    assert fold_batch_norms(model) is model


def test_bad_argument():
    with pytest.raises(ValueError, match="fold_batch_norms"):
        fold_batch_norms(keras.layers.Dense(2))


def test_bf16_serving_stores_the_affine_in_bf16_with_the_same_outputs(mixed_policy):
    from kerasmer.core.precision import bfloat16_serving_model

    keras.utils.set_random_seed(0)
    with mixed_policy("mixed_bfloat16"):
        model = _toy()
    randomize_batch_norms(model)
    folded = fold_batch_norms(model)
    assert folded.get_layer("bn3").compute_dtype == "bfloat16"  # the affine computes in bf16: no casts of x
    served = bfloat16_serving_model(folded)
    assert {w.dtype for w in served.get_layer("bn3").weights} == {"bfloat16"}
    assert {w.dtype for w in served.get_layer("c1").weights} == {"bfloat16"}
    x = np.random.default_rng(4).normal(size=(2, 12, 12, 3)).astype("float32")
    want = np.asarray(folded(x), np.float32)
    np.testing.assert_allclose(np.asarray(served(x), np.float32), want, atol=1e-6)
    # and within bf16 rounding of the unfolded mixed model (which normalises in float32)
    ref = np.asarray(model(x, training=False), np.float32)
    assert np.max(np.abs(want - ref)) <= 0.05 * np.max(np.abs(ref)), np.max(np.abs(want - ref))
