"""LEARNet against Table I of Verma et al. (IEEE TIP 2020)."""

import keras
import numpy as np
import pytest

import kerasmer
from kerasmer.layers import LocalResponseNormalization

# Table I, "#Parameters (w+b)" per layer (the FC row corrected, see docs/architectures.md).
TABLE_I = {
    "conv1": 432 + 16,
    **{f"lateral_conv2_{i}": 256 + 16 for i in range(1, 5)},
    **{f"lateral_conv3_{i}": 4608 + 32 for i in range(1, 5)},
    **{f"lateral_conv4_{i}": 51200 + 64 for i in range(1, 5)},
    "lrn": 256 + 256,
    "conv5": 589824 + 256,
    "fc": 4 * 4 * 256 * 256 + 256,
}
TABLE_I_SHAPES = {"conv1": (56, 56, 16), "lateral_conv2_1": (28, 28, 16), "lateral_conv3_1": (14, 14, 32),
                  "lateral_conv4_1": (7, 7, 64), "lateral_concat": (7, 7, 256), "conv5": (4, 4, 256)}


def _trainable(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("normalization, moving_stats", [("batch", 2 * 256), ("lrn", 0)])
def test_per_layer_params_match_table_i(normalization, moving_stats):
    # Table I counts learnable parameters ("w+b", and mu, nu for LRN); the batch
    # norm's moving mean/variance are non-trainable and counted apart.
    model = kerasmer.build_model("learnet", num_classes=8, normalization=normalization)
    for name, count in TABLE_I.items():
        assert _trainable(model.get_layer(name).trainable_weights) == count, name
    assert _trainable(model.trainable_weights) == sum(TABLE_I.values()) + 256 * 8 + 8 == 1_866_632
    assert _trainable(model.non_trainable_weights) == moving_stats
    assert model.count_params() == 1_866_632 + moving_stats


def test_default_normalization_is_batch_norm_of_equations_9_to_12():
    # Eqs. (9)-(12): y = mu * (x - m_B) / sqrt(d_B^2 + eps) + nu over the
    # mini-batch, per channel; not AlexNet's cross-channel LRN.
    model = kerasmer.build_model("learnet", num_classes=3, input_shape=(32, 32, 3))
    layer = model.get_layer("lrn")
    assert isinstance(layer, keras.layers.BatchNormalization)
    rng = np.random.default_rng(0)
    x = (5.0 + 3.0 * rng.normal(size=(4, 2, 2, 256))).astype("float32")
    mu, nu = rng.normal(size=256).astype("float32"), rng.normal(size=256).astype("float32")
    layer.gamma.assign(mu)
    layer.beta.assign(nu)
    m_b, d_b2 = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    want = mu * (x - m_b) / np.sqrt(d_b2 + layer.epsilon) + nu
    np.testing.assert_allclose(np.asarray(layer(x, training=True)), want, rtol=1e-4, atol=1e-4)


def test_lrn_option_and_bad_normalization():
    model = kerasmer.build_model("learnet", num_classes=3, input_shape=(32, 32, 3), normalization="lrn")
    assert isinstance(model.get_layer("lrn"), LocalResponseNormalization)
    with pytest.raises(ValueError, match="normalization"):
        kerasmer.build_model("learnet", normalization="layer")


def test_output_shapes_match_table_i():
    model = kerasmer.build_model("learnet")
    for name, shape in TABLE_I_SHAPES.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape, name


def test_accretion_wiring():
    model = kerasmer.build_model("learnet")
    add = model.get_layer("lateral_add1_1")
    inbound = {t._keras_history.operation.name for t in add.input}
    assert inbound == {"lateral_conv2_1", "lateral_conv2_3"}
    assert model.get_layer("lateral_conv3_3").input._keras_history.operation.name == "lateral_add1_1"


def test_lrn_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 3, 7)).astype("float32")
    layer = LocalResponseNormalization(depth_radius=2, bias=1.0, alpha=1e-1, beta=0.75, scale=False)
    got = np.asarray(layer(x))
    sq = x ** 2
    want = np.empty_like(x)
    for c in range(7):
        s = sq[..., max(0, c - 2): c + 3].sum(-1)
        want[..., c] = x[..., c] / (1.0 + 0.1 * s) ** 0.75
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
