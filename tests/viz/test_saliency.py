"""Grad-CAM against a hand computation, attention masks' values per family, and their pictures."""

import keras
import numpy as np
import pytest

import kerasmer
from kerasmer.models import attention_outputs, cam_layer
from kerasmer.models.meranet import basic_block_3d, meranet_attention_outputs
from kerasmer.models.micro_attention import attention_map_model
from kerasmer.viz import (
    cam_time_profile, grad_cam, layer_outputs, mask_map, plot_attention_masks, plot_grad_cam,
    plot_spatiotemporal_attention,
)

RNG = np.random.default_rng(0)


def _tiny(conv, pool, input_shape, *, name):
    """input -> conv (known weights) -> ReLU -> global average pool -> Dense softmax (known weights)."""
    inputs = keras.Input(input_shape)
    a = conv(2, 1, name="conv")(inputs)
    r = keras.layers.ReLU(name="relu")(a)
    head = keras.layers.Dense(3, activation="softmax", name="predictions")
    model = keras.Model(inputs, head(pool()(r)), name=name)
    c_in = input_shape[-1]
    kernel = RNG.normal(size=model.get_layer("conv").kernel.shape).astype("float32")
    model.get_layer("conv").set_weights([kernel, np.array([0.1, -0.2], "float32")])
    w = RNG.normal(size=(2, 3)).astype("float32")
    head.set_weights([w, np.array([0.0, 0.5, -0.5], "float32")])
    return model, kernel.reshape(c_in, 2), w


def _by_hand(x, k, bias, w, c):
    """Grad-CAM of class c at the conv layer, in numpy: y_c = sum_k w[k, c] * mean(relu(A_k)) + b_c."""
    a = x @ k + bias                                  # (..., 2): the 1x1 conv
    grads = (a > 0) * w[:, c] / np.prod(a.shape[:-1])  # dy_c / dA_k at each position
    alpha = grads.reshape(-1, 2).mean(axis=0)          # eq. 1
    return np.maximum((a * alpha).sum(-1), 0), alpha   # eq. 2


@pytest.mark.parametrize("conv, pool, shape", [
    (keras.layers.Conv2D, keras.layers.GlobalAveragePooling2D, (5, 6, 3)),
    (keras.layers.Conv3D, keras.layers.GlobalAveragePooling3D, (4, 5, 6, 2)),
])
def test_grad_cam_matches_a_hand_computation(conv, pool, shape, tmp_path, check_png):
    model, k, w = _tiny(conv, pool, shape, name="tiny")
    x = RNG.normal(size=shape).astype("float32")
    for c in range(3):
        cam = grad_cam(model, x, "conv", class_index=c)
        expected, alpha = _by_hand(x, k, np.array([0.1, -0.2]), w, c)
        assert cam.score == "logit" and cam.class_index == c and cam.map.shape == shape[:-1]
        np.testing.assert_allclose(cam.weights, alpha, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(cam.map, expected, rtol=1e-4, atol=1e-6)
        assert cam.map.min() >= 0
    assert grad_cam(model, x[None], "conv").class_index == int(np.argmax(model.predict(x[None], verbose=0)))
    fig = plot_grad_cam(x, cam.map, class_name="c2", path=tmp_path / "cam.png")
    check_png(fig, tmp_path / "cam.png")
    if len(shape) == 4:  # the time profile is the mean per time step
        np.testing.assert_allclose(cam_time_profile(cam.map), expected.mean(axis=(1, 2)), rtol=1e-4, atol=1e-6)


def test_grad_cam_explains_bad_input():
    model, _, _ = _tiny(keras.layers.Conv2D, keras.layers.GlobalAveragePooling2D, (5, 6, 3), name="tiny")
    with pytest.raises(ValueError, match="no layer 'nope'"):
        grad_cam(model, np.zeros((5, 6, 3)), "nope")
    with pytest.raises(ValueError, match=r"shape \(4, 6, 3\)"):
        grad_cam(model, np.zeros((4, 6, 3)), "conv")
    with pytest.raises(ValueError, match="feature map"):
        grad_cam(model, np.zeros((5, 6, 3)), "predictions")
    with pytest.raises(ValueError, match="class_index 3"):
        grad_cam(model, np.zeros((5, 6, 3)), "conv", class_index=3)
    with pytest.raises(ValueError, match="goes with"):
        plot_grad_cam(np.zeros((5, 6, 3)), np.zeros((2, 2, 2)))


def test_cam_layer_default_is_the_last_feature_map():
    model = kerasmer.build_model("learnet", input_shape=(32, 32, 3), num_classes=3)
    layer = cam_layer(model)
    assert len(model.get_layer(layer).output.shape) == 4
    assert all(len(getattr(lay.output, "shape", ())) not in (4, 5) for lay in
               model.layers[[lay.name for lay in model.layers].index(layer) + 1:])
    with pytest.raises(ValueError, match="no layer with a 4-D or 5-D"):
        cam_layer(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


def test_cam_layer_from_the_model_spec():
    from kerasmer.models import registry

    @registry.register_model("viz_test_tiny", input_shape=(5, 6, 3), modality="frame", num_classes=3, paper="none",
                             cam_layer="conv")
    def tiny(*, num_classes, input_shape):
        return _tiny(keras.layers.Conv2D, keras.layers.GlobalAveragePooling2D, input_shape, name="viz_test_tiny")[0]

    try:
        model = kerasmer.build_model("viz_test_tiny")
        assert cam_layer(model) == "conv"                      # the spec's, not the generic "relu"
        assert cam_layer(model, "not_registered") == "relu"    # the generic default: the last 4-D output
    finally:
        del registry._REGISTRY["viz_test_tiny"]


@pytest.mark.parametrize("activation", ["mixed", "channel", "spatial"])
def test_residual_attention_masks_per_activation(activation, tmp_path, check_png):
    model = kerasmer.build_model("emoresnet", input_shape=(32, 32, 8), num_classes=3,
                                 attention_activation=activation)
    x = RNG.normal(size=(32, 32, 8)).astype("float32")
    probs, *masks = [np.asarray(m)[0] for m in attention_outputs(model)(x[None])]
    assert len(masks) == 3 and probs.shape == (3,)
    assert [m.shape[:2] for m in masks] == [(16, 16), (8, 8), (4, 4)]
    if activation == "channel":  # eq. 5: unit L2 norm across the channels at every position
        np.testing.assert_allclose(np.linalg.norm(masks[0], axis=-1), 1.0, atol=1e-3)
        assert all(-1 <= m.min() and m.max() <= 1 for m in masks)
    else:
        assert all(0 < m.min() and m.max() < 1 for m in masks)
    # the same masks read by layer name, as the CLI does
    names = [lay.name for lay in model.layers if lay.name.endswith("mask_activation")]
    by_name = layer_outputs(model, x, names)
    np.testing.assert_allclose(by_name[names[0]], masks[0], rtol=1e-5, atol=1e-6)
    fig = plot_attention_masks(x, masks, names=names, activation=activation, path=tmp_path / "m.png")
    check_png(fig, tmp_path / "m.png")
    # A known answer: zero the mask branch's last conv. Mixed gives sigmoid(0) = 0.5; spatial a constant map,
    # standardised to 0, so 0.5; channel a zero vector, normalised to 0.
    conv = model.get_layer("att2_1_mask_out2_conv")
    conv.set_weights([np.zeros_like(v) for v in conv.get_weights()])
    silent = layer_outputs(model, x, [names[0]])[names[0]]
    np.testing.assert_allclose(mask_map(silent, activation), 0.0 if activation == "channel" else 0.5, atol=1e-6)


def test_micro_attention_maps(tmp_path, check_png):
    model = kerasmer.build_model("micro_attention_resnet", input_shape=(32, 32, 3), num_classes=3,
                                 stage_widths=(8, 8, 8, 8))
    x = RNG.normal(size=(32, 32, 3)).astype("float32")
    maps = [np.asarray(m)[0] for m in attention_map_model(model)(x[None])]
    assert [m.shape for m in maps] == [(8, 8, 1), (4, 4, 1), (2, 2, 1), (1, 1, 1)]
    embed = layer_outputs(model, x, ["stage1_block1_attn_embed"])["stage1_block1_attn_embed"]
    np.testing.assert_allclose(mask_map(maps[0], None), embed.mean(-1), rtol=1e-5, atol=1e-6)  # eq. 1
    fig = plot_attention_masks(x, maps, activation=None, path=tmp_path / "micro.png")
    check_png(fig, tmp_path / "micro.png")


def _tiny_meranet():
    inputs = keras.Input((4, 8, 8, 3))
    x = keras.layers.Conv3D(8, 1, name="stem")(inputs)
    x = basic_block_3d(x, 8, policy="float32", attention=dict(reduction=2, channel_attention="conv",
                                                              st_kernel_size=(3, 3, 3)), name="stage1_block1")
    x = basic_block_3d(x, 8, policy="float32", strides=2, attention=dict(reduction=2, channel_attention="conv",
                                                                         st_kernel_size=(3, 3, 3)), name="stage2_block1")
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(
        keras.layers.GlobalAveragePooling3D()(x))
    return keras.Model(inputs, outputs, name="meranet_tiny")


def test_meranet_attention_and_3d_grad_cam(tmp_path, check_png):
    model = _tiny_meranet()
    st = model.get_layer("stage2_block1_st_conv")
    st.set_weights([np.zeros_like(v) for v in st.get_weights()])
    clip = RNG.normal(size=(4, 8, 8, 3)).astype("float32")
    out = {k: np.asarray(v)[0] for k, v in meranet_attention_outputs(model)(clip[None]).items()}
    assert list(out) == ["probabilities", "stage1_block1_ca", "stage1_block1_st", "stage2_block1_ca",
                         "stage2_block1_st"]
    assert out["stage1_block1_ca"].shape == (1, 1, 1, 8) and out["stage1_block1_st"].shape == (4, 8, 8, 1)
    assert out["stage2_block1_st"].shape == (2, 4, 4, 1)
    np.testing.assert_allclose(out["stage2_block1_st"], 0.5, atol=1e-6)  # sigmoid(0)
    assert all(0 < v.min() and v.max() < 1 for k, v in out.items() if k != "probabilities")
    blocks = {b: {"ca": out[f"{b}_ca"], "st": out[f"{b}_st"]} for b in ("stage1_block1", "stage2_block1")}
    check_png(plot_spatiotemporal_attention(clip, blocks, path=tmp_path / "st.png"), tmp_path / "st.png")
    layer = cam_layer(model)
    assert layer == "stage2_block1_out"
    cam = grad_cam(model, clip, layer)
    assert cam.map.shape == (2, 4, 4) and cam_time_profile(cam.map).shape == (2,)
    check_png(plot_grad_cam(clip, cam.map, path=tmp_path / "cam3d.png"), tmp_path / "cam3d.png")
    with pytest.raises(ValueError, match="no channel or spatio-temporal"):
        meranet_attention_outputs(_tiny(keras.layers.Conv2D, keras.layers.GlobalAveragePooling2D, (5, 6, 3),
                                        name="plain")[0])
