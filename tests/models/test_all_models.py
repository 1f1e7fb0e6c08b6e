"""One test file for every registered model (timm / keras-hub style).

A model gets all of these by registering: build, forward shape without NaN,
one training step whose gradients reach every trainable weight, a ``.keras``
round trip in safe mode, a SavedModel round trip, mixed-precision dtypes, and
its parameter count against the paper.  Forward and backward passes use the
registry's small ``test_input_shape``; full-size models are only built and
counted.

Tests marked ``large`` (full-size builds of the big models, and round trips
that take 5 s or more on a 2-core CPU) are left out of the quick developer loop
``pytest -m "not large"``; plain ``pytest`` runs them.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasmer
from kerasmer.export import export_saved_model

MODELS = kerasmer.list_models()
NUM_CLASSES = 3  # small heads keep the tests fast; the count test uses the paper's
# Paper-size builds of the big models (224x224 attention networks, 16x112x112 3D ResNets).
LARGE_FULL_SIZE = {"larnet", "attention92", "attention56", "meranet18", "resnet3d18"}
# Round trips of 5 s or more (measured on a 2-core CPU; LARNet's SavedModel: 60 s).
LARGE_KERAS_ROUND_TRIP = {"larnet", "attention92", "attention56", "emoresnet"}
LARGE_SAVED_MODEL = {"larnet", "attention92", "attention56", "emoresnet", "meranet18", "micro_attention_resnet"}


def _models(large: set) -> list:
    """``MODELS`` for parametrize, the names in ``large`` marked ``large``."""
    return [pytest.param(name, marks=pytest.mark.large) if name in large else name for name in MODELS]


def _small_shape(name):
    info = kerasmer.model_info(name)
    return info.test_input_shape or info.input_shape


@functools.lru_cache(maxsize=None)
def _small_model(name):
    keras.utils.set_random_seed(0)
    return kerasmer.build_model(name, num_classes=NUM_CLASSES, input_shape=_small_shape(name))


def _batch(name, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch,) + _small_shape(name)).astype("float32")


def test_registry_is_populated():
    assert "learnet" in MODELS
    for name in MODELS:
        info = kerasmer.model_info(name)
        assert info.modality in ("frame", "clip", "dynamic_image", "flow")
        assert info.num_classes > 1


@pytest.mark.parametrize("name", _models(LARGE_FULL_SIZE))
def test_param_count_matches_paper(name):
    info = kerasmer.model_info(name)
    config = dict(info.paper_params_config)
    model = kerasmer.build_model(name, **config)
    # Papers count learnable parameters (PyTorch's parameters(), MATLAB's
    # learnables, Table I of LEARNet): BatchNorm's moving statistics, which
    # Keras' count_params() includes, are not among them.
    ours = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert ours > 0
    if info.paper_params is not None and info.params_rtol is not None:
        rel = abs(ours - info.paper_params) / info.paper_params
        assert rel <= info.params_rtol, f"{name}: {ours:,} params vs paper {info.paper_params:,} ({rel:.2%})"


@pytest.mark.parametrize("name", MODELS)
def test_forward_shape_and_finite(name):
    model = _small_model(name)
    y = model(_batch(name), training=False)
    y = keras.ops.convert_to_numpy(y)
    assert y.shape == (2, NUM_CLASSES)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_train_step_reaches_every_weight(name):
    model = _small_model(name)
    x = tf.constant(_batch(name, batch=4, seed=1))
    y = tf.one_hot([0, 1, 2, 0], NUM_CLASSES)
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = keras.losses.categorical_crossentropy(y, pred)
        loss = tf.reduce_mean(loss) + tf.add_n([tf.cast(v, tf.float32) for v in model.losses] or [0.0])
    assert np.isfinite(float(loss))
    grads = tape.gradient(loss, model.trainable_weights)
    missing = [w.path for w, g in zip(model.trainable_weights, grads) if g is None]
    assert not missing, f"{name}: no gradient reaches {missing}"
    zero = [w.path for w, g in zip(model.trainable_weights, grads) if not np.any(g.numpy())]
    assert not zero, f"{name}: gradient is identically zero for {zero}"
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


@pytest.mark.parametrize("name", _models(LARGE_KERAS_ROUND_TRIP))
def test_keras_file_round_trip(name, tmp_path):
    model = _small_model(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = _batch(name)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", _models(LARGE_SAVED_MODEL))
def test_saved_model_round_trip(name, tmp_path):
    model = _small_model(name)
    out = export_saved_model(model, tmp_path / name, class_names=[f"c{i}" for i in range(NUM_CLASSES)])
    reloaded = tf.saved_model.load(str(out))
    fn = reloaded.signatures["serving_precomputed"]  # serving_default takes raw frames (docs/serving.md)
    x = _batch(name)
    got = fn(tf.constant(x))["probabilities"].numpy()
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("name", MODELS)
def test_mixed_precision_output_is_float32(name, policy, mixed_policy):
    with mixed_policy(policy):
        model = kerasmer.build_model(name, num_classes=NUM_CLASSES, input_shape=_small_shape(name))
        assert model.outputs[0].dtype == "float32"
        y = keras.ops.convert_to_numpy(model(_batch(name), training=False))
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("name", MODELS)
def test_folded_inference_graph_gives_the_same_outputs(name):
    # Exports and inference serve fold_batch_norms(model): the same inference outputs, with BN statistics
    # made non-trivial so that a wrong fold (a transposed scale, a missed bias) shows.
    from tests.models.test_folding import randomize_batch_norms

    keras.utils.set_random_seed(1)
    model = kerasmer.build_model(name, num_classes=NUM_CLASSES, input_shape=_small_shape(name))
    randomize_batch_norms(model)
    folded = kerasmer.models.fold_batch_norms(model)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(folded.folding["folded"]) + len(folded.folding["affine"]) == len(bns) if bns else folded is model
    x = _batch(name)
    np.testing.assert_allclose(np.asarray(folded(x)), np.asarray(model(x, training=False)), rtol=1e-4, atol=1e-5)
