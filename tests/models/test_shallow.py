"""The three shallow attention models against §2 and Table 1 of Upadhy & Verlekar,
and their token layers.  Full-size models are only built; forward passes use small clips."""

import keras
import numpy as np
import pytest

import kerasmer
from kerasmer.layers.tokens import BlocksToTokens, GridSplit, MultiHeadSelfAttention, PositionalEmbedding, TokenSelect

T = 13
NUM_CLASSES = 5
SMALL = (T, 30, 30, 1)


def _mhsa_params(d, attention_dim=64):
    """Q and V projections with bias, K without, output projection back to d."""
    return 3 * d * attention_dim + 2 * attention_dim + attention_dim * d + d


def _head_params(d, fc=128, classes=NUM_CLASSES):
    return d * fc + fc + fc * classes + classes


def _expected_params(name, c, side=90):
    """Parameter count from the layer list of §2 (our readings: valid padding, 64-wide attention)."""
    if name == "shallow_conv3d_mhsa":
        block = side // 3
        d = ((T - 4) // 2) * ((block - 4) // 2) ** 2 * 8             # Conv3D 5×5×5 valid, pool 2×2×2
        return (125 * c * 8 + 8) + 9 * d + _mhsa_params(d) + _head_params(d)  # + 9 positional vectors
    d = ((side - 2) // 2) ** 2 * 8                                   # 3×3 valid, pool 2×2, 8 channels
    if name == "shallow_conv2d_mhsa":
        return (9 * c * 8 + 8) + T * d + _mhsa_params(d) + _head_params(d)
    convlstm = 4 * (9 * c * 32 + 9 * 32 * 32 + 32)                   # four gates, input + recurrent kernels
    return convlstm + (32 * 8 + 8) + _mhsa_params(d) + _head_params(d)


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("name", ["shallow_conv3d_mhsa", "shallow_conv2d_mhsa", "shallow_convlstm_mhsa"])
def test_param_count_follows_section_2(name, c):
    model = kerasmer.build_model(name, num_classes=NUM_CLASSES, input_shape=(T, 90, 90, c))
    assert model.count_params() == _expected_params(name, c)


def test_convlstm_count_within_15_percent_of_table_1():
    info = kerasmer.model_info("shallow_convlstm_mhsa")
    assert info.paper_params == 6_000_000 and info.params_rtol == 0.15
    for c in (1, 3):
        ours = _expected_params("shallow_convlstm_mhsa", c)
        assert abs(ours - 6_000_000) / 6_000_000 <= 0.15
    # The per-head reading of "parameter size of 64" (4 heads of 64) would be ~3x too large.
    wide = kerasmer.build_model("shallow_convlstm_mhsa", num_classes=NUM_CLASSES, attention_dim=256)
    assert wide.count_params() > 1.15 * 6_000_000


@pytest.mark.parametrize("name, tokens, features", [
    ("shallow_conv3d_mhsa", 9, 4 * 13 * 13 * 8),
    ("shallow_conv2d_mhsa", T, 44 * 44 * 8),
    ("shallow_convlstm_mhsa", T, 44 * 44 * 8),
])
def test_token_shapes_at_paper_size(name, tokens, features):
    model = kerasmer.build_model(name)
    assert tuple(model.input.shape[1:]) == (T, 90, 90, 3)
    assert tuple(model.get_layer("mhsa").output.shape[1:]) == (tokens, features)


def test_positional_embedding_only_where_the_paper_adds_it():
    names = {n: [layer.name for layer in kerasmer.build_model(n, input_shape=SMALL).layers]
             for n in ("shallow_conv3d_mhsa", "shallow_conv2d_mhsa", "shallow_convlstm_mhsa")}
    assert "pos_embed" in names["shallow_conv3d_mhsa"] and "pos_embed" in names["shallow_conv2d_mhsa"]
    assert "pos_embed" not in names["shallow_convlstm_mhsa"]


def test_selected_tokens():
    assert kerasmer.build_model("shallow_conv2d_mhsa", input_shape=SMALL).get_layer("apex_token").index == T // 2
    moved = kerasmer.build_model("shallow_conv2d_mhsa", input_shape=SMALL, apex_index=4)
    assert moved.get_layer("apex_token").index == 4
    assert kerasmer.build_model("shallow_convlstm_mhsa", input_shape=SMALL).get_layer("offset_token").index == -1


def test_apex_token_attends_to_other_frames():
    """The classifier reads only the apex token, yet a change to another frame reaches it through attention."""
    keras.utils.set_random_seed(0)
    model = kerasmer.build_model("shallow_conv2d_mhsa", num_classes=3, input_shape=SMALL)
    x = np.random.default_rng(0).normal(size=(1,) + SMALL).astype("float32")
    y0 = np.asarray(model(x))
    x2 = x.copy()
    x2[:, 0] += 1.0
    assert not np.allclose(np.asarray(model(x2)), y0)


@pytest.mark.parametrize("name", ["shallow_conv3d_mhsa", "shallow_conv2d_mhsa", "shallow_convlstm_mhsa"])
def test_grayscale_and_rgb_run(name):
    for c in (1, 3):
        model = kerasmer.build_model(name, num_classes=3, input_shape=(T, 30, 30, c))
        y = np.asarray(model(np.zeros((1, T, 30, 30, c), "float32")))
        assert y.shape == (1, 3) and np.all(np.isfinite(y))


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="input_shape.*C = 1"):
        kerasmer.build_model("shallow_convlstm_mhsa", input_shape=(T, 30, 30, 2))
    with pytest.raises(ValueError, match="input_shape.*divisible by grid=3"):
        kerasmer.build_model("shallow_conv3d_mhsa", input_shape=(T, 32, 30, 1))
    with pytest.raises(ValueError, match="kernel_size=5"):
        kerasmer.build_model("shallow_conv3d_mhsa", input_shape=(T, 12, 12, 1))
    with pytest.raises(ValueError, match="apex_index=13"):
        kerasmer.build_model("shallow_conv2d_mhsa", input_shape=SMALL, apex_index=13)
    with pytest.raises(ValueError, match="attention_dim=30"):
        kerasmer.build_model("shallow_conv2d_mhsa", input_shape=SMALL, attention_dim=30)


def test_grid_split_and_tokens_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 6, 9, 2)).astype("float32")
    blocks = np.asarray(GridSplit(3)(x))
    assert blocks.shape == (18, 3, 2, 3, 2)
    for b in range(2):
        for r in range(3):
            for c in range(3):
                np.testing.assert_array_equal(blocks[b * 9 + r * 3 + c], x[b, :, 2 * r:2 * r + 2, 3 * c:3 * c + 3])
    tokens = np.asarray(BlocksToTokens(9)(blocks))
    assert tokens.shape == (2, 9, 3 * 2 * 3 * 2)
    np.testing.assert_array_equal(tokens[1, 5], blocks[9 + 5].ravel())


def test_token_select_and_positional_embedding():
    x = np.arange(2 * 4 * 3, dtype="float32").reshape(2, 4, 3)
    np.testing.assert_array_equal(np.asarray(TokenSelect(-1)(x)), x[:, 3])
    np.testing.assert_array_equal(np.asarray(TokenSelect(1)(x)), x[:, 1])
    with pytest.raises(ValueError, match="index=4"):
        TokenSelect(4)(x)
    pos = PositionalEmbedding()
    y = np.asarray(pos(x))
    np.testing.assert_allclose(y - x, np.broadcast_to(pos.embeddings.numpy(), x.shape), atol=1e-5)


def test_self_attention_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 6)).astype("float32")
    layer = MultiHeadSelfAttention(num_heads=2, key_dim=3)
    got = np.asarray(layer(x))
    assert [w.path.split("/")[-2] for w in layer.weights].count("key") == 1  # key kernel only, no key bias
    wq, bq = layer.query_dense.get_weights()
    (wk,) = layer.key_dense.get_weights()
    wv, bv = layer.value_dense.get_weights()
    wo, bo = layer.output_dense.get_weights()
    q, k, v = (x @ wq + bq), (x @ wk), (x @ wv + bv)
    heads = []
    for h in range(2):
        s = slice(3 * h, 3 * h + 3)
        scores = q[..., s] @ np.swapaxes(k[..., s], 1, 2) / np.sqrt(3)
        w = np.exp(scores - scores.max(-1, keepdims=True))
        heads.append((w / w.sum(-1, keepdims=True)) @ v[..., s])
    np.testing.assert_allclose(got, np.concatenate(heads, -1) @ wo + bo, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer", [GridSplit(3), BlocksToTokens(9), PositionalEmbedding(), TokenSelect(6),
                                   MultiHeadSelfAttention(4, 16)])
def test_token_layers_serialize(layer):
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
