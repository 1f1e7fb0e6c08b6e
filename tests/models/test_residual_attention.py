"""Attention-56/92, EmoResNet and LARNet against the LARNet paper (Sensors 2021).

The shared test (tests/models/test_all_models.py) already covers, for the
default options: Table 2 parameter counts (±5%), a small forward pass,
gradients, ``.keras`` and SavedModel round trips and mixed precision.  This
file checks what is specific to the family: the attention equations, the
other activations and naive attention, shapes at 224 and 160, identity
shortcuts, the multi-output (``return_attention``) models, and LARNet's stage
freezing and weight loading.  Everything runs on small inputs except static
shape checks of full-size builds and one batch-1 forward at 160x160.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasmer
from kerasmer.layers.attention import AttentionActivation, BilinearResize
from kerasmer.models.residual_attention import attention_outputs

SMALL = (64, 64, 3)
EMO_SMALL = (32, 32, 8)  # smaller sizes pool some masks to 1x1
rng = np.random.default_rng(0)


def _outputs_of(model, *layer_names):
    return keras.Model(model.input, [model.get_layer(n).output for n in layer_names])


# ----------------------------------------------------------------- activations (eqs. 4-6)

def test_attention_activations_match_equations():
    x = rng.normal(scale=3.0, size=(2, 5, 4, 6)).astype("float32")
    mixed = np.asarray(AttentionActivation("mixed")(x))
    np.testing.assert_allclose(mixed, 1 / (1 + np.exp(-x)), rtol=1e-5, atol=1e-6)
    channel = np.asarray(AttentionActivation("channel")(x))
    np.testing.assert_allclose(channel, x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-4, atol=1e-6)
    spatial = np.asarray(AttentionActivation("spatial")(x))
    z = (x - x.mean(axis=(1, 2), keepdims=True)) / x.std(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(spatial, 1 / (1 + np.exp(-z)), rtol=1e-4, atol=1e-5)


def test_attention_activation_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        AttentionActivation("softmax")
    with pytest.raises(ValueError, match="attention_activation"):
        kerasmer.build_model("emoresnet", attention_activation="softmax")


@pytest.mark.parametrize("activation", ["mixed", "channel", "spatial"])
def test_masks_lie_in_their_range(activation):
    keras.utils.set_random_seed(1)
    model = kerasmer.build_model("emoresnet", input_shape=EMO_SMALL, attention_activation=activation,
                                 return_attention=True)
    probs, *masks = model(rng.normal(size=(2,) + EMO_SMALL).astype("float32"))
    assert len(masks) == 3 and probs.shape == (2, 7)
    for mask in map(np.asarray, masks):
        assert np.all(np.isfinite(mask))
        if activation == "channel":
            # eq. 5: unit L2 norm across channels at every position.
            np.testing.assert_allclose(np.linalg.norm(mask, axis=-1), 1.0, rtol=1e-3)
            assert mask.min() >= -1.0 and mask.max() <= 1.0
        else:
            assert mask.min() >= 0.0 and mask.max() <= 1.0
        if activation == "spatial":
            # eq. 6: the logits are standardised per sample and channel.
            m = np.clip(mask.astype("float64"), 1e-7, 1 - 1e-7)
            logit = np.log(m / (1 - m))
            np.testing.assert_allclose(logit.mean(axis=(1, 2)), 0.0, atol=1e-2)
            np.testing.assert_allclose(logit.std(axis=(1, 2)), 1.0, atol=1e-2)


# ----------------------------------------------------------------- eq. (3) and eq. (1)

@pytest.mark.parametrize("residual", [True, False])
def test_attention_output_is_one_plus_mask_times_trunk(residual):
    keras.utils.set_random_seed(2)
    model = kerasmer.build_model("emoresnet", input_shape=EMO_SMALL, residual_attention=residual)
    h_name = "att3_1_residual" if residual else "att3_1_gate"
    trunk, mask, h = _outputs_of(model, "att3_1_trunk2_out", "att3_1_mask_activation", h_name)(
        rng.normal(size=(1,) + EMO_SMALL).astype("float32"))
    trunk, mask, h = map(np.asarray, (trunk, mask, h))
    assert mask.shape == trunk.shape == h.shape
    expected = (1 + mask) * trunk if residual else mask * trunk
    np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-5)
    names = {layer.name for layer in model.layers}
    assert ("att3_1_residual" in names) == residual


@pytest.mark.parametrize("options", [{"attention_activation": "channel"}, {"attention_activation": "spatial"},
                                     {"residual_attention": False}])
def test_gradients_reach_every_weight_for_non_default_options(options):
    keras.utils.set_random_seed(3)
    model = kerasmer.build_model("emoresnet", num_classes=3, input_shape=EMO_SMALL, **options)
    x = tf.constant(rng.normal(size=(4,) + EMO_SMALL).astype("float32"))
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(tf.one_hot([0, 1, 2, 0], 3), pred))
    grads = tape.gradient(loss, model.trainable_weights)
    bad = [w.path for w, g in zip(model.trainable_weights, grads) if g is None or not np.any(g.numpy())]
    assert not bad


# ----------------------------------------------------------------- architecture (Table 2, §4.1.3)

@pytest.mark.large  # Attention-56 at its full 224x224 input
def test_identity_shortcuts_where_shapes_match():
    model = kerasmer.build_model("attention56", num_classes=1000)
    projections = sorted(layer.name for layer in model.layers if layer.name.endswith("_shortcut"))
    # Only the four units that change channels or stride project; every unit
    # inside the attention modules keeps the identity (Wang et al.'s design).
    assert projections == ["res2_shortcut", "res3_shortcut", "res4_shortcut", "res5_1_shortcut"]
    assert model.count_params() < 40_000_000  # the all-projection pitfall gives ~49.7M


@pytest.mark.parametrize("size", [pytest.param(224, marks=pytest.mark.large), 160])  # 224: full size
def test_attention92_shapes(size):
    model = kerasmer.build_model("attention92", input_shape=(size, size, 3), return_attention=True)
    s = size // 4
    assert [tuple(o.shape[1:]) for o in model.outputs] == [
        (7,), (s, s, 256), (s // 2, s // 2, 512), (s // 2, s // 2, 512),
        (s // 4, s // 4, 1024), (s // 4, s // 4, 1024), (s // 4, s // 4, 1024)]
    assert tuple(model.get_layer("post_relu").output.shape[1:]) == (size // 32, size // 32, 2048)
    # Each soft mask bottoms out at 7x7 for a 224 input (§4.1.1).
    for name in ("att2_1_mask_down3_pool", "att3_2_mask_down2_pool", "att4_3_mask_down1_pool"):
        assert tuple(model.get_layer(name).output.shape[1:3]) == (size // 32, size // 32)


def test_attention56_forward_at_160():
    keras.utils.set_random_seed(4)
    model = kerasmer.build_model("attention56", input_shape=(160, 160, 3))
    y = np.asarray(model(rng.normal(size=(1, 160, 160, 3)).astype("float32"), training=False))
    assert y.shape == (1, 7) and np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(), 1.0, rtol=1e-5)


def test_emoresnet_shapes_follow_section_4_1_3():
    model = kerasmer.build_model("emoresnet")
    shapes = {n: tuple(model.get_layer(n).output.shape[1:]) for n in
              ("pool1_pool", "att2_1_post_out", "att3_1_post_out", "att4_1_post_out", "res5_3_out")}
    assert shapes == {"pool1_pool": (16, 16, 32), "att2_1_post_out": (16, 16, 128), "att3_1_post_out": (8, 8, 256),
                      "att4_1_post_out": (4, 4, 512), "res5_3_out": (4, 4, 1024)}


def test_classifier_has_the_l2_penalty():
    model = kerasmer.build_model("attention56", input_shape=SMALL, l2=0.01)
    dense = model.get_layer("predictions")
    assert dense.kernel_regularizer is not None
    np.testing.assert_allclose(float(dense.kernel_regularizer(dense.kernel)),
                               0.01 * np.sum(np.square(dense.kernel.numpy())), rtol=1e-5)


# ----------------------------------------------------------------- resize layer

def test_bilinear_resize_to_reference_and_fixed_size():
    x = np.broadcast_to(np.arange(3, dtype="float32")[None, :, None, None], (1, 3, 3, 2)).copy()
    ref = np.zeros((1, 5, 7, 4), "float32")
    y = np.asarray(BilinearResize()([x, ref]))
    assert y.shape == (1, 5, 7, 2)
    # Bilinear interpolation of a ramp along H stays monotone and within range.
    assert np.all(np.diff(y[0, :, 0, 0]) >= 0) and y.min() >= 0 and y.max() <= 2
    assert np.asarray(BilinearResize(size=(4, 6))(x)).shape == (1, 4, 6, 2)
    with pytest.raises(ValueError, match="reference"):
        BilinearResize()(x)
    with pytest.raises(ValueError, match="size"):
        BilinearResize(size=(0, 3))


def test_input_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="input_shape"):
        kerasmer.build_model("attention56", input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="spatial"):
        kerasmer.build_model("emoresnet", input_shape=(16, 16, 8), attention_activation="spatial")
    with pytest.raises(ValueError, match="stage3_size"):
        kerasmer.build_model("larnet", input_shape=SMALL, stage3_size=(4, 4))


# ----------------------------------------------------------------- attention outputs

@pytest.mark.large  # a .keras round trip of 14 s
def test_return_attention_round_trip_and_helper(tmp_path):
    keras.utils.set_random_seed(5)
    model = kerasmer.build_model("emoresnet", input_shape=EMO_SMALL, attention_activation="spatial",
                                 return_attention=True)
    path = tmp_path / "emo.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(size=(2,) + EMO_SMALL).astype("float32")
    for a, b in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The helper turns a single-output model into the same multi-output one.
    single = kerasmer.build_model("emoresnet", input_shape=EMO_SMALL, attention_activation="spatial")
    single.set_weights(model.get_weights())
    viz = attention_outputs(single)
    for a, b in zip(viz.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="AttentionActivation"):
        attention_outputs(kerasmer.build_model("learnet", num_classes=3))


def test_mixed_float16_with_standardised_masks():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = kerasmer.build_model("emoresnet", input_shape=EMO_SMALL, attention_activation="spatial",
                                     return_attention=True)
        probs, *masks = model(rng.normal(scale=10, size=(2,) + EMO_SMALL).astype("float32"))
    finally:
        keras.config.set_dtype_policy("float32")
    assert probs.dtype == "float32" and masks[0].dtype == "float16"
    assert all(np.all(np.isfinite(np.asarray(m, "float32"))) for m in [probs, *masks])


# ----------------------------------------------------------------- LARNet

def test_larnet_stages_masks_and_fusion():
    model = kerasmer.build_model("larnet", input_shape=SMALL, return_attention=True)
    names = [o._keras_history.operation.name for o in model.outputs]
    assert names[0] == "predictions" and len(names) == 1 + 6 + 3 + 3
    assert [n.split("_")[0] for n in names[1:]] == ["stage1"] * 6 + ["stage2"] * 3 + ["stage3"] * 3
    concat = model.get_layer("fusion_concat")
    assert {t._keras_history.operation.name for t in concat.input} == {"stage1_post_relu", "stage2_post_relu"}
    assert tuple(model.get_layer("fusion_resize").output.shape[1:]) == (32, 32, 32)
    # L2 0.01 on the first layer of stages 1 and 2 (§4.1), not on stage 3.
    assert model.get_layer("stage1_conv1_conv").kernel_regularizer is not None
    assert model.get_layer("stage2_conv1_conv").kernel_regularizer is not None
    assert model.get_layer("stage3_conv1_conv").kernel_regularizer is None
    assert all(layer.trainable for layer in model.layers)


@pytest.mark.large  # builds Attention-92, Attention-56 and LARNet, a .keras round trip: 17 s
def test_larnet_loads_stage_weights_and_freezes(tmp_path):
    keras.utils.set_random_seed(6)
    a92 = kerasmer.build_model("attention92", num_classes=5, input_shape=SMALL)
    a56 = kerasmer.build_model("attention56", num_classes=5, input_shape=SMALL)
    a56.save(tmp_path / "a56.keras")  # one stage from a file, the other from a model
    model = kerasmer.build_model("larnet", input_shape=SMALL, stage1_weights=a92,
                                 stage2_weights=str(tmp_path / "a56.keras"), freeze_stages=True)
    for src, prefix in ((a92, "stage1_"), (a56, "stage2_")):
        for name in ("conv1_conv", "att2_1_mask_out2_conv", "res5_3_3_conv", "post_bn"):
            for w_src, w_dst in zip(src.get_layer(name).weights, model.get_layer(prefix + name).weights):
                np.testing.assert_array_equal(w_src.numpy(), w_dst.numpy())
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert trainable and not any(p.startswith(("stage1_", "stage2_")) for p in trainable)
    assert any(p.startswith("stage3_") for p in trainable) and "predictions" in trainable
    assert not model.get_layer("stage1_att3_2_trunk1_1_conv").trainable
    # Stage 1 needs an Attention-92: an Attention-56 leaves its layers empty.
    with pytest.raises(ValueError, match="stage1_weights"):
        kerasmer.build_model("larnet", input_shape=SMALL, stage1_weights=a56)
