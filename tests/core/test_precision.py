"""Precision for inference (kerasmer.core.precision): ``purpose="inference"`` and serving a mixed model in float32.

The training side of ``precision="auto"`` is tested in tests/training/test_precision.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasmer
from kerasmer.core import precision as P
from kerasmer.inference import load_served_model


@pytest.mark.parametrize(
    "gpu, bf16, training, inference",
    [
        (True, True, "mixed_float16", "mixed_float16"),
        (False, True, "mixed_bfloat16", "float32"),  # bf16 inference measured slower on a CPU
        (False, False, "float32", "float32"),
    ],
)
def test_auto_for_inference_picks_float32_on_a_cpu(gpu, bf16, training, inference):
    assert P.resolve_precision("auto", gpu_available=gpu, cpu_bf16=bf16) == training
    assert P.resolve_precision("auto", purpose="training", gpu_available=gpu, cpu_bf16=bf16) == training
    assert P.resolve_precision("auto", purpose="inference", gpu_available=gpu, cpu_bf16=bf16) == inference


def test_inference_auto_never_picks_bf16_on_this_machine_without_a_gpu():
    if tf.config.list_physical_devices("GPU"):
        assert P.resolve_precision("auto", purpose="inference") == "mixed_float16"
    else:
        assert P.resolve_precision("auto", purpose="inference") == "float32"


def test_explicit_precision_is_honoured_for_inference():
    assert P.resolve_precision("bf16", purpose="inference", gpu_available=False) == "mixed_bfloat16"


def test_unknown_purpose_is_a_clear_error():
    with pytest.raises(ValueError, match="purpose.*training, inference.*'serving'"):
        P.resolve_precision("auto", purpose="serving")


@pytest.fixture(scope="module")
def bf16_model():
    return kerasmer.build_model("learnet", input_shape=(32, 32, 3), num_classes=3, precision="mixed_bfloat16")


def test_float32_model_computes_in_float32_with_the_same_weights(bf16_model):
    assert {layer.compute_dtype for layer in bf16_model.layers} >= {"bfloat16"}
    served = P.float32_model(bf16_model)
    assert {layer.compute_dtype for layer in served.layers} == {"float32"}
    assert served.name == bf16_model.name
    assert [layer.name for layer in served.layers] == [layer.name for layer in bf16_model.layers]
    for a, b in zip(served.get_weights(), bf16_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    y32, y16 = np.asarray(served(x, training=False)), np.asarray(bf16_model(x, training=False))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y16, atol=3e-2)  # bf16 keeps ~3 significant digits


def test_float32_model_returns_a_float32_model_unchanged():
    model = kerasmer.build_model("learnet", input_shape=(32, 32, 3), num_classes=3, precision="float32")
    assert P.float32_model(model) is model


def test_float32_model_refuses_a_non_model():
    with pytest.raises(ValueError, match="model must be a keras.Model"):
        P.float32_model("model.keras")


def test_load_served_model_serves_a_bf16_model_in_the_inference_precision(bf16_model, tmp_path):
    path = tmp_path / "learnet.keras"
    bf16_model.save(path)
    auto = load_served_model(path)
    dtypes = {layer.compute_dtype for layer in auto.keras_model.layers}
    assert dtypes == ({"float32"} if not tf.config.list_physical_devices("GPU") else dtypes)
    kept = load_served_model(path, precision="mixed_bfloat16")
    assert "bfloat16" in {layer.compute_dtype for layer in kept.keras_model.layers}
    assert "bfloat16" in {w.dtype for w in kept.keras_model.weights}  # served with bf16-stored weights
    x = np.random.default_rng(1).normal(size=(3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(auto.predict(x), kept.predict(x), atol=3e-2)
    with pytest.raises(ValueError, match="Unknown precision"):
        load_served_model(path, precision="int8")


def test_bfloat16_serving_model_stores_the_weights_in_bf16_and_gives_the_mixed_outputs(bf16_model):
    served = P.bfloat16_serving_model(bf16_model)
    convs = [layer for layer in served.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
             and layer.compute_dtype == "bfloat16"]
    assert convs and all(w.dtype == "bfloat16" for layer in convs for w in layer.weights)
    assert [layer.name for layer in served.layers] == [layer.name for layer in bf16_model.layers]
    assert served.get_layer("predictions").compute_dtype == "float32"  # the float32 head is kept
    x = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(served(x, training=False)), np.asarray(bf16_model(x, training=False)),
                               atol=1e-6)  # the mixed model rounds the same weights to bf16 on every call


def test_bfloat16_serving_model_leaves_a_float32_model_alone():
    model = kerasmer.build_model("learnet", input_shape=(32, 32, 3), num_classes=3, precision="float32")
    assert P.bfloat16_serving_model(model) is model
