"""3D ResNet-18 and MERANet-18 against Gajjala et al. (ICVGIP 2021), Table 2 and §3–§5.

Full-size models are only built (for shapes and counts); numerical checks run
the attention modules on tiny volumes against NumPy references.
"""

import itertools

import keras
import numpy as np
import pytest

import kerasmer
from kerasmer.layers import ChannelPool, GuardedConv3D, ReduceSum, channel_attention_3d, spatiotemporal_attention_3d
from kerasmer.models.meranet import RESNET3D_SPECS, STAGE_FILTERS

# Supplementary Table 2, "Output Size" written C×T×H×W; ours is channels-last.
TABLE_2 = {
    "stem_relu": (64, 16, 56, 56),
    "stage1_block1_out": (64, 16, 56, 56), "stage1_block2_out": (64, 16, 56, 56),
    "stage2_block1_out": (128, 8, 28, 28), "stage2_block2_out": (128, 8, 28, 28),
    "stage3_block1_out": (256, 4, 14, 14), "stage3_block2_out": (256, 4, 14, 14),
    "stage4_block1_out": (512, 2, 7, 7), "stage4_block2_out": (512, 2, 7, 7),
}
PAPER_RESNET3D18 = 33_167_811  # §5.1, "3,31,67,811"
BLOCKS = [f"stage{s}_block{b}" for s in range(1, 5) for b in range(1, 3)]


@pytest.fixture(scope="module")
def full_models():
    """Both models at the paper's 16x112x112 clips; every test using them is marked ``large``."""
    return {name: kerasmer.build_model(name, num_classes=3) for name in ("resnet3d18", "meranet18")}


def _inbound(layer):
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return {t._keras_history.operation.name for t in inputs}


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.large
@pytest.mark.parametrize("name", ["resnet3d18", "meranet18"])
def test_block_shapes_match_table_2(full_models, name):
    model = full_models[name]
    for layer, (c, t, h, w) in TABLE_2.items():
        assert tuple(model.get_layer(layer).output.shape[1:]) == (t, h, w, c), layer
    assert tuple(model.get_layer("avg_pool").output.shape[1:]) == (512,)


@pytest.mark.large
def test_stem_and_downsampling_strides(full_models):
    model = full_models["resnet3d18"]
    stem = model.get_layer("stem_conv")
    assert stem.kernel_size == (3, 7, 7) and stem.strides == (1, 2, 2)
    names = {layer.name for layer in model.layers}
    for stage in range(2, 5):
        sc = model.get_layer(f"stage{stage}_block1_shortcut_conv")
        assert sc.kernel_size == (1, 1, 1) and sc.strides == (2, 2, 2) and not sc.use_bias
        assert f"stage{stage}_block1_shortcut_bn" in names
        assert model.get_layer(f"stage{stage}_block1_1_conv").strides == (2, 2, 2)
        assert f"stage{stage}_block2_shortcut_conv" not in names  # identity shortcut
    assert "stage1_block1_shortcut_conv" not in names  # 64 -> 64, stride 1: identity
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]
    assert len(convs) == 1 + 2 * sum(RESNET3D_SPECS[18]) + 3


@pytest.mark.large
def test_resnet3d18_trainable_params_equal_paper(full_models):
    # The paper counts like PyTorch (BN gamma/beta only); Keras' count_params also
    # holds BN's moving statistics, 2 per BN channel.
    model = full_models["resnet3d18"]
    assert _trainable(model) == PAPER_RESNET3D18
    bn_channels = sum(layer.gamma.shape[0] for layer in model.layers
                      if isinstance(layer, keras.layers.BatchNormalization))
    assert model.count_params() == PAPER_RESNET3D18 + 2 * bn_channels


def _attention_params(reduction=16, kernel=5):
    total = 0
    for block in BLOCKS:
        c = STAGE_FILTERS[int(block[5]) - 1]
        h = c // reduction
        total += (c * h + h) + (h * c + c)  # shared bottleneck, with biases
        total += 2 * kernel ** 3 + 1  # spatio-temporal conv: 2 -> 1 channel
    return total


@pytest.mark.large
def test_meranet18_adds_at_most_two_percent(full_models):
    base = full_models["resnet3d18"].count_params()
    ours = full_models["meranet18"].count_params()
    assert 0 < ours - base <= 0.02 * base
    assert ours - base == _attention_params()


@pytest.mark.parametrize("overrides, expected", [
    ({"channel_attention": "mlp"}, _attention_params()),
    ({"st_kernel_size": 3}, _attention_params(kernel=3)),
    ({"st_kernel_size": 7, "reduction": 8}, _attention_params(reduction=8, kernel=7)),
])
def test_meranet18_overrides_change_the_attention(overrides, expected):
    model = kerasmer.build_model("meranet18", input_shape=(16, 32, 32, 3), **overrides)
    small_base = kerasmer.build_model("resnet3d18", input_shape=(16, 32, 32, 3))
    assert model.count_params() - small_base.count_params() == expected
    k = overrides.get("st_kernel_size", 5)
    assert model.get_layer("stage1_block1_st_conv").kernel_size == (k, k, k)
    if overrides.get("channel_attention") == "mlp":
        assert isinstance(model.get_layer("stage1_block1_ca_fc1"), keras.layers.Dense)


@pytest.mark.large
def test_attention_order_in_every_block(full_models):
    # Eq. (10)-(12): BN of conv 2 -> channel attention -> ST attention -> add -> ReLU.
    model = full_models["meranet18"]
    for b in BLOCKS:
        assert _inbound(model.get_layer(f"{b}_ca_avgpool")) == {f"{b}_2_bn"}
        assert _inbound(model.get_layer(f"{b}_ca_scale")) == {f"{b}_2_bn", f"{b}_ca_sigmoid"}
        assert _inbound(model.get_layer(f"{b}_st_pool")) == {f"{b}_ca_scale"}
        assert _inbound(model.get_layer(f"{b}_st_scale")) == {f"{b}_ca_scale", f"{b}_st_conv"}
        shortcut = f"{b}_shortcut_bn" if b.endswith("block1") and b != "stage1_block1" else None
        add_in = _inbound(model.get_layer(f"{b}_add"))
        assert f"{b}_st_scale" in add_in and len(add_in) == 2
        if shortcut:
            assert shortcut in add_in
        assert _inbound(model.get_layer(f"{b}_out")) == {f"{b}_add"}
        c = model.get_layer(f"{b}_2_bn").output.shape[-1]
        assert model.get_layer(f"{b}_ca_reduce").filters == c // 16
        assert model.get_layer(f"{b}_st_conv").kernel_size == (5, 5, 5)


@pytest.mark.large
def test_xavier_uniform_and_zero_bias_initialisation(full_models):
    model = full_models["meranet18"]
    kernel = np.asarray(model.get_layer("stage4_block2_2_conv").kernel)
    fan_in = fan_out = 27 * 512
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(kernel).max() <= limit * (1 + 1e-6)  # float32 rounding at the bound
    assert np.abs(kernel).max() > 0.99 * limit  # and it is not a narrower distribution
    # uniform on [-l, l] has std l/sqrt(3); 7M samples pin it to well under 1%.
    assert abs(kernel.std() / (limit / np.sqrt(3)) - 1) < 0.01
    for layer in model.layers:
        if getattr(layer, "use_bias", False):
            assert not np.any(np.asarray(layer.bias)), layer.name


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(scale=0.3, size=w.shape).astype("float32"))


def test_channel_attention_matches_numpy():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 32)).astype("float32")
    inp = keras.Input(x.shape[1:])
    model = keras.Model(inp, channel_attention_3d(inp, policy="float32", reduction=4, name="ca"))
    _randomise(model, 1)
    ws, bs = (np.asarray(v) for v in model.get_layer("ca_reduce").weights)
    we, be = (np.asarray(v) for v in model.get_layer("ca_expand").weights)

    def shared(d):  # (batch, C) -> (batch, C)
        return np.maximum(d @ ws.reshape(32, 8) + bs, 0) @ we.reshape(8, 32) + be

    att = _sigmoid(shared(x.mean(axis=(1, 2, 3))) + shared(x.max(axis=(1, 2, 3))))
    want = x * att[:, None, None, None, :]
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-5, atol=1e-5)


def test_mlp_channel_attention_equals_conv_with_the_same_weights():
    # CN-SMLP and CN-SCNN compute the same function on 1x1x1 descriptors.
    x = np.random.default_rng(2).normal(size=(2, 2, 3, 3, 16)).astype("float32")
    inp = keras.Input(x.shape[1:])
    conv = keras.Model(inp, channel_attention_3d(inp, policy="float32", reduction=4, shared="conv", name="ca"))
    mlp = keras.Model(inp, channel_attention_3d(inp, policy="float32", reduction=4, shared="mlp", name="ca"))
    _randomise(conv, 3)
    for src, dst in (("ca_reduce", "ca_fc1"), ("ca_expand", "ca_fc2")):
        k, b = conv.get_layer(src).weights
        mlp.get_layer(dst).kernel.assign(np.asarray(k).reshape(mlp.get_layer(dst).kernel.shape))
        mlp.get_layer(dst).bias.assign(np.asarray(b))
    np.testing.assert_allclose(np.asarray(mlp(x)), np.asarray(conv(x)), rtol=1e-5, atol=1e-6)


def test_spatiotemporal_attention_matches_numpy():
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 5, 6)).astype("float32")
    inp = keras.Input(x.shape[1:])
    model = keras.Model(inp, spatiotemporal_attention_3d(inp, policy="float32", kernel_size=3, name="st"))
    _randomise(model, 5)
    kernel, bias = (np.asarray(v) for v in model.get_layer("st_conv").weights)  # (3,3,3,2,1)
    desc = np.concatenate([x.mean(-1, keepdims=True), x.max(-1, keepdims=True)], axis=-1)
    padded = np.pad(desc, ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0)))
    logits = np.full(x.shape[:4], bias[0], dtype="float64")
    for dt, dh, dw in itertools.product(range(3), repeat=3):
        window = padded[:, dt:dt + 3, dh:dh + 4, dw:dw + 5, :]
        logits += window @ kernel[dt, dh, dw, :, 0]
    want = x * _sigmoid(logits)[..., None]
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-5, atol=1e-5)


def test_bfloat16_guard_covers_shallow_temporal_depth(mixed_policy):
    # Stage 4 (T=2) 3x3x3 convs and the 5x5x5 ST convs at T=4 and T=2 must be GuardedConv3D
    # (bf16, weight gradient on the explicitly padded input); deep-enough ones plain Conv3D.
    with mixed_policy("mixed_bfloat16"):
        model = kerasmer.build_model("meranet18", input_shape=(16, 32, 32, 3))
    seen = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):
            shallow = layer.input.shape[1] < layer.kernel_size[0]
            assert isinstance(layer, GuardedConv3D) == shallow and layer.compute_dtype == "bfloat16", layer.name
            seen.add(shallow)
    assert seen == {True, False}
    assert isinstance(model.get_layer("stage3_block1_st_conv"), GuardedConv3D)  # T=4 < 5
    assert not isinstance(model.get_layer("stage2_block1_st_conv"), GuardedConv3D)  # T=8


def test_32_frame_clips_build():
    # §4.2 uses 32 frames for CASME I/II.
    model = kerasmer.build_model("meranet18", input_shape=(32, 32, 32, 3))
    assert tuple(model.get_layer("stage4_block2_out").output.shape[1:]) == (4, 2, 2, 512)


@pytest.mark.parametrize("name, kwargs, match", [
    ("resnet3d18", {"input_shape": (112, 112, 3)}, "input_shape"),
    ("resnet3d18", {"input_shape": (16, 112, 112, 0)}, "input_shape"),
    ("resnet3d18", {"dropout": 1.5}, "dropout"),
    ("meranet18", {"channel_attention": "transformer"}, "channel_attention"),
    ("meranet18", {"reduction": 0}, "reduction"),
    ("meranet18", {"reduction": 128}, "reduction"),
    ("meranet18", {"st_kernel_size": (5, 5)}, "st_kernel_size"),
    ("meranet18", {"st_kernel_size": -1}, "st_kernel_size"),
])
def test_bad_options_name_the_argument(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerasmer.build_model(name, **kwargs)


def test_custom_layers_round_trip_config():
    layer = ReduceSum(axis=2, keepdims=False, name="s")
    clone = ReduceSum.from_config(layer.get_config())
    assert (clone.axis, clone.keepdims, clone.name) == (2, False, "s")
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    np.testing.assert_allclose(np.asarray(clone(x)), x.sum(axis=2))
    assert clone.compute_output_shape((2, 3, 4)) == (2, 3)
    pool = ChannelPool.from_config(ChannelPool(name="p").get_config())
    np.testing.assert_allclose(np.asarray(pool(x)), np.stack([x.mean(-1), x.max(-1)], -1))
    with pytest.raises(ValueError, match="axis"):
        ReduceSum(axis=0)


def test_meranet18_initialises_from_resnet3d18_by_layer_name():
    # The two models share every non-attention layer name, so a trained 3D ResNet
    # initialises MERANet's trunk and leaves only the attention layers fresh.
    from kerasmer.models.transfer import load_weights_by_name

    shape = (16, 32, 32, 3)
    resnet = kerasmer.build_model("resnet3d18", input_shape=shape)
    meranet = kerasmer.build_model("meranet18", input_shape=shape)
    report = load_weights_by_name(meranet, resnet)
    assert not report.unmatched_source and not report.shape_mismatch
    assert report.unmatched_target and all("_ca_" in n or "_st_" in n for n in report.unmatched_target)
    np.testing.assert_array_equal(np.asarray(meranet.get_layer("stage4_block2_2_conv").kernel),
                                  np.asarray(resnet.get_layer("stage4_block2_2_conv").kernel))
