"""kerasmer's BatchNormalization (TensorFlow's fused kernel) against keras.layers.BatchNormalization.

Same weights, same moving-average rule, same gradients, to float rounding; the cases the fused kernel
does not take fall back to Keras' own call and match it exactly.
"""

import numpy as np
import pytest

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from kerasmer.core.kernels import fused_batch_norm, fused_batch_norm_supported
from kerasmer.layers import BatchNormalization

POLICIES = ["float32", "mixed_bfloat16"]
SHAPES = [(3, 4, 5, 6, 7), (4, 9, 9, 5), (2, 2, 2, 1, 3), (1, 1, 1, 1, 3)]


@pytest.fixture(autouse=True)
def _restore_policy():
    previous = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(previous)


def _pair(shape, **kwargs):
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    layers = keras.layers.BatchNormalization(**kwargs), BatchNormalization(**kwargs)
    gamma = rng.standard_normal(shape[-1]).astype("float32")
    beta = rng.standard_normal(shape[-1]).astype("float32")
    for layer in layers:
        layer.build(shape)
        layer.set_weights([gamma, beta, np.full(shape[-1], 0.5, "float32"), np.full(shape[-1], 2.0, "float32")])
    x = tf.constant(rng.standard_normal(shape) * 3 + 1, tf.float32)
    w = tf.constant(rng.standard_normal(shape), tf.float32)
    return layers, x, w


def _step(layer, x, w):
    """One training call with gradients, then an inference call: everything a fit step touches."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * w)
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    return {"y": y, "dx": grads[0], "dgamma": grads[1], "dbeta": grads[2],
            "moving_mean": layer.moving_mean, "moving_variance": layer.moving_variance,
            "inference": layer(x, training=False)}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fused_batch_norm_matches_keras(policy, shape):
    keras.mixed_precision.set_global_policy(policy)
    (ref, fused), x, w = _pair(shape, momentum=0.9)
    want, got = _step(ref, x, w), _step(fused, x, w)
    assert got["y"].dtype == want["y"].dtype == keras.mixed_precision.global_policy().compute_dtype
    for key in want:
        a, b = (np.asarray(tf.cast(d[key], tf.float32)) for d in (want, got))
        scale = max(1.0, float(np.max(np.abs(a))))
        # float32 rounding: a few ulps of the largest value; bf16 outputs may differ by one bf16 ulp.
        tol = 1e-5 if policy == "float32" or key not in ("y", "dx", "inference") else 1e-2
        assert np.max(np.abs(a - b)) <= tol * scale, key


def test_the_moving_variance_is_the_biased_one_as_in_keras():
    # TensorFlow's kernel returns the batch variance with Bessel's correction; with 8 values per
    # channel an uncorrected update would be 8/7 too large in its batch part.
    x = tf.constant(np.arange(24, dtype="float32").reshape(2, 2, 2, 1, 3))
    _, mean, variance = fused_batch_norm(x, tf.ones(3), tf.zeros(3), tf.zeros(3), tf.ones(3), epsilon=1e-3,
                                         training=True)
    flat = x.numpy().reshape(-1, 3)
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-6)
    np.testing.assert_allclose(variance, flat.var(0), rtol=1e-6)


FALLBACKS = {"rank2": ((8, 6), {}, False), "axis1": ((4, 3, 5, 6), {"axis": 1}, False),
             "no_scale": ((4, 3, 5, 6), {"scale": False}, False), "mask": ((4, 3, 5, 6), {}, True)}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_what_the_kernel_does_not_take_falls_back_to_keras_exactly(case):
    shape, kwargs, masked = FALLBACKS[case]
    ref, fused = keras.layers.BatchNormalization(**kwargs), BatchNormalization(**kwargs)
    x = tf.constant(np.random.default_rng(0).standard_normal(shape) * 3 + 1, tf.float32)
    call = {"mask": tf.constant(np.arange(np.prod(shape[:-1])).reshape(shape[:-1]) % 3 > 0)} if masked else {}
    np.testing.assert_array_equal(ref(x, training=True, **call), fused(x, training=True, **call))
    np.testing.assert_array_equal(ref.moving_variance, fused.moving_variance)


def test_supported_inputs():
    assert fused_batch_norm_supported(tf.zeros((2, 3, 3, 4)), axis=-1)
    assert fused_batch_norm_supported(tf.zeros((2, 2, 3, 3, 4), tf.bfloat16), axis=4)
    assert not fused_batch_norm_supported(tf.zeros((2, 4)), axis=-1)
    assert not fused_batch_norm_supported(tf.zeros((2, 3, 3, 4)), axis=1)
    assert not fused_batch_norm_supported(tf.zeros((2, 3, 3, 4), tf.float64), axis=-1)


def test_a_frozen_layer_uses_its_moving_statistics():
    (ref, fused), x, _ = _pair((4, 3, 5, 6))
    ref.trainable = fused.trainable = False
    np.testing.assert_allclose(ref(x, training=True), fused(x, training=True), atol=1e-5)
    np.testing.assert_array_equal(fused.moving_mean, np.full(6, 0.5, "float32"))


def test_it_round_trips_through_a_keras_file(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, BatchNormalization(momentum=0.8, epsilon=1e-4, name="bn")(inputs))
    model.layers[-1].set_weights([np.full(3, v, "float32") for v in (2.0, 1.0, 0.5, 3.0)])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    layer = loaded.get_layer("bn")
    assert type(layer) is BatchNormalization
    assert layer.get_config() == model.layers[-1].get_config()
    x = np.random.default_rng(2).standard_normal((2, 4, 4, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))


def test_it_runs_under_op_determinism():
    was = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        (_, fused), x, w = _pair((2, 3, 4, 4, 5))
        first, second = _step(fused, x, w), _step(fused, x, w)
        np.testing.assert_array_equal(first["dx"], second["dx"])
    finally:
        if not was:
            tf_config.disable_op_determinism()
