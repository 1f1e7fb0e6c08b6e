"""TF 2.21's bfloat16 BiasAddGrad and kerasmer's biased layers (:mod:`kerasmer.layers.biased`).

1. **Reproducer**: ``BiasAddGrad`` in bfloat16 against the float32 sum; records whether this TensorFlow still
   saturates and asserts only what stays true once it is fixed: :func:`add_bias`'s gradient is right.
2. **The layers**: kerasmer's Conv2D/Conv3D/Dense give Keras' outputs and input gradients bit for bit, and bias
   gradients that match float32's in bfloat16 (Keras' own do not, which shows the test can fail).
3. **Every model**: under ``mixed_bfloat16``, every layer of every registered model that owns a bias or a batch
   norm's beta gets, at a size where a bfloat16 accumulator saturates, the gradient float32 gives.

Replacing :func:`add_bias`'s bfloat16 branch by Keras' ``add(outputs, bias)`` fails 2 and 3.
"""

from __future__ import annotations

import functools
import json
import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasmer
from kerasmer.layers import Conv2D, Conv3D, Dense, add_bias, inference_graph

# One bfloat16 rounding of a float32-accumulated sum is within 2^-8 of it; 2^-6 leaves room for the few
# positions where a ReLU's derivative flips between bf16 and float32.  A saturated sum is off by 0.5 or more.
TOLERANCE = 2.0**-6
# Input positions per channel in the model test: a bf16 accumulator stops at 256 for sums of ones, so 2,048
# positions (512 after a stride-2 layer) are off by 0.5 or more when it saturates.
POSITIONS = 2048


def _bf16_round(x):
    return tf.cast(tf.cast(x, tf.bfloat16), tf.float32)


def _rel_error(got, ref) -> float:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


def test_reproducer_bias_add_grad_in_bfloat16(capsys):
    """Records whether BiasAddGrad still sums in bfloat16; fails only if add_bias's gradient is wrong."""
    values = _bf16_round(np.random.default_rng(0).random((4096, 16)).astype("float32"))
    reference = tf.reduce_sum(values, axis=0)
    raw = tf.cast(tf.raw_ops.BiasAddGrad(out_backprop=tf.cast(values, tf.bfloat16)), tf.float32)
    bias = tf.zeros((16,), tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch(bias)
        out = add_bias(tf.zeros((4096, 16), tf.bfloat16), bias)
    ours = tf.cast(tape.gradient(out, bias, output_gradients=tf.cast(values, tf.bfloat16)), tf.float32)
    assert _rel_error(ours, reference) <= TOLERANCE
    raw_error = _rel_error(raw, reference)
    state = (f"TF {tf.__version__} bfloat16 BiasAddGrad over 4,096 rows: relative error {raw_error:.3g} "
             + ("(saturates: keep kerasmer.layers.biased)" if raw_error > TOLERANCE else "(fixed)"))
    with capsys.disabled():
        print("\n" + state)
    warnings.warn(state, UserWarning, stacklevel=1)


LAYERS = [  # (kerasmer class, Keras class, args, kwargs, input shape): 2,048+ positions per channel
    (Conv2D, keras.layers.Conv2D, (16, 3), {"padding": "same", "activation": "relu"}, (8, 16, 16, 4)),
    (Conv2D, keras.layers.Conv2D, (8, 1), {"strides": 2}, (32, 16, 16, 4)),
    (Conv3D, keras.layers.Conv3D, (8, 3), {"padding": "same"}, (4, 2, 16, 16, 4)),
    (Dense, keras.layers.Dense, (8,), {}, (4096, 6)),
    (Dense, keras.layers.Dense, (8,), {"activation": "relu"}, (64, 64, 6)),
]


def _run(layer, x, dy):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    return (y, *tape.gradient(y, [x, layer.bias], output_gradients=tf.cast(dy, y.dtype)))


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("ours,theirs,args,kwargs,shape", LAYERS)
def test_biased_layer_is_keras_with_a_right_bias_gradient(policy, ours, theirs, args, kwargs, shape):
    rng = np.random.default_rng(0)
    layers = {"ours": ours(*args, dtype=policy, **kwargs), "keras": theirs(*args, dtype=policy, **kwargs),
              "reference": theirs(*args, dtype="float32", **kwargs)}
    for layer in layers.values():
        layer.build(shape)
    weights = [rng.standard_normal(w.shape).astype("float32") for w in layers["ours"].weights]
    for layer in layers.values():
        layer.set_weights(weights)
    x = _bf16_round(rng.standard_normal(shape).astype("float32"))
    dy = _bf16_round(rng.random(layers["ours"].compute_output_shape(shape)).astype("float32"))
    got = {key: _run(layer, x, dy) for key, layer in layers.items()}
    for a, b in zip(got["ours"][:2], got["keras"][:2]):
        np.testing.assert_array_equal(a, b)  # the same forward pass and input gradient
    error = _rel_error(got["ours"][2], got["reference"][2])
    assert error <= (1e-5 if policy == "float32" else TOLERANCE), f"bias gradient off by {error:.3g}"
    if policy == "mixed_bfloat16":
        # Keras' own layer through BiasAdd: wrong here, which is why kerasmer's exist.
        assert _rel_error(got["keras"][2], got["reference"][2]) > 0.25


def test_biased_layers_round_trip_as_kerasmer_layers(tmp_path):
    inputs = keras.Input((2, 8, 8, 3))
    x = Conv3D(4, 3, padding="same", name="c3")(inputs)
    x = keras.layers.TimeDistributed(Conv2D(4, 3, name="c2"), name="td")(x)
    outputs = Dense(2, name="fc")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert [type(loaded.get_layer(n)) for n in ("c3", "fc")] == [Conv3D, Dense]
    assert type(loaded.get_layer("td").layer) is Conv2D
    x = np.random.default_rng(0).standard_normal((2, 2, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(model(x), loaded(x))


def op_types(fn, spec) -> set:
    """The op types of ``fn`` traced at ``spec``."""
    return {op.type for op in fn.get_concrete_function(spec).graph.get_operations()}


def test_inference_graphs_keep_keras_bias_add():
    """Traced under inference_graph(), a bf16 layer adds its bias with BiasAdd (fusable); otherwise it broadcasts."""
    layer = Conv2D(4, 3, padding="same", dtype="mixed_bfloat16")
    spec = tf.TensorSpec((2, 8, 8, 3), tf.float32)

    def served(x):
        with inference_graph():
            return layer(x)

    trained_ops, served_ops = op_types(tf.function(layer), spec), op_types(tf.function(served), spec)
    assert "BiasAdd" not in trained_ops and "AddV2" in trained_ops
    assert "BiasAdd" in served_ops
    assert "BiasAdd" not in op_types(tf.function(lambda x: layer(x)), spec)  # the context has ended
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(tf.function(layer)(x), tf.function(served)(x))


# ---------------------------------------------------------------- every model


def _shift_owners(model):
    """(layer to call, its bias or beta) for every layer of ``model`` that owns one; an RNN cell's is its RNN's."""
    cells = {id(layer.cell): layer for layer in model._flatten_layers(include_self=False, recursive=True)
             if hasattr(layer, "cell")}
    owners = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for var in layer._trainable_variables:
            if var.name in ("bias", "beta"):
                owners.append((cells.get(id(layer), layer), var))
    return owners


def _synthetic_input(layer):
    """A standard-normal input of the shape ``layer`` was built for, with a batch of POSITIONS positions."""
    shape = list(next(iter(layer._build_shapes_dict.values())))
    positions = math.prod(d for d in shape[1:-1] if d) or 1
    shape[0] = -(-POSITIONS // positions)
    return _bf16_round(np.random.default_rng(0).standard_normal(shape).astype("float32"))


def _shift_gradient(layer, var, x, policy):
    layer.dtype_policy = policy
    with tf.GradientTape() as tape:
        y = layer(x, training=True) if layer._call_has_training_arg else layer(x)
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    return tape.gradient(loss, var)


@functools.lru_cache(maxsize=None)
def _shift_errors(name):
    info = kerasmer.model_info(name)
    keras.utils.set_random_seed(0)
    model = kerasmer.build_model(name, num_classes=3, input_shape=info.test_input_shape or info.input_shape,
                                 precision="mixed_bfloat16")
    rows, seen = [], set()
    for layer, var in _shift_owners(model):
        if layer.compute_dtype != "bfloat16":
            continue
        config = {k: v for k, v in layer.get_config().items() if k != "name"}
        key = (type(layer).__name__, var.name, json.dumps(config, sort_keys=True, default=str),
               str(layer._build_shapes_dict))
        if key in seen:  # identical layers (repeated units) behave identically
            continue
        seen.add(key)
        x = _synthetic_input(layer)
        bf16 = _shift_gradient(layer, var, x, "mixed_bfloat16")
        f32 = _shift_gradient(layer, var, x, "float32")
        layer.dtype_policy = "mixed_bfloat16"
        rows.append((layer.name, type(layer).__name__, var.name, tuple(x.shape), _rel_error(bf16, f32)))
    return rows


@pytest.mark.parametrize("name", kerasmer.list_models())
def test_every_bias_gradient_is_right_in_bfloat16(name):
    rows = _shift_errors(name)
    bad = [r for r in rows if not r[4] <= TOLERANCE]
    report = "\n".join(f"  {n} ({kind}.{var}, input {shape}): error {e:.3g}" for n, kind, var, shape, e in bad)
    assert not bad, f"{name}: {len(bad)} of {len(rows)} layers have wrong bf16 bias/beta gradients:\n{report}"
