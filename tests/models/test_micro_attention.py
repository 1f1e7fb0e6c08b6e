"""Micro-attention ResNet against §3 and Table 3 of Wang et al. (Micro-Attention for MER),
and the transfer helper of §3.3.  Full-size models are only built; numerics use tiny ones."""

import keras
import numpy as np
import pytest

import kerasmer
from kerasmer.models.micro_attention import (DEFAULT_STAGE_WIDTHS, FITTED_STAGE_BLOCKS, FITTED_STAGE_WIDTHS,
                                             RESNET10_STAGE_BLOCKS, RESNET10_STAGE_WIDTHS, attention_map_model,
                                             init_from_baseline, is_attention_layer)
from kerasmer.models.transfer import load_weights_by_name

NAME = "micro_attention_resnet"
TINY = dict(input_shape=(32, 32, 3), stage_blocks=(1, 2), stage_widths=(4, 8))


def _tiny(seed=0, **kw):
    keras.utils.set_random_seed(seed)
    return kerasmer.build_model(NAME, **{"num_classes": 3, **TINY, **kw})


def _embed_params(blocks, widths):
    # concat(3C) -> 1x1 conv with C outputs and bias, per block
    return sum(n * (3 * c * c + c) for n, c in zip(blocks, widths))


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("blocks, widths", [(FITTED_STAGE_BLOCKS, FITTED_STAGE_WIDTHS),
                                            (RESNET10_STAGE_BLOCKS, RESNET10_STAGE_WIDTHS)])
def test_param_counts_match_table_3(blocks, widths):
    kw = dict(num_classes=5, stage_blocks=blocks, stage_widths=widths)
    base = _trainable(kerasmer.build_model(NAME, micro_attention=False, **kw))
    full = _trainable(kerasmer.build_model(NAME, **kw))
    assert abs(base - 4.9e6) / 4.9e6 <= 0.03, base
    assert abs(full - 5.9e6) / 5.9e6 <= 0.015, full
    assert full - base == _embed_params(blocks, widths)  # attention adds only the embeddings


def test_default_is_resnet10_at_paper_size():
    # Issue 13: the default is the ResNet-10 that §3.3 initialises from ImageNet
    # (it was 3+2+3+2 blocks of fitted widths, now the FITTED_* option).
    model = kerasmer.build_model(NAME)
    adds = [layer for layer in model.layers if layer.name.endswith("_add")]
    maps = [layer for layer in model.layers if layer.name.endswith("_attn_map")]
    assert len(adds) == 4 and len(maps) == 4  # one block (and unit) per stage
    assert [a.output.shape[-1] for a in adds] == [64, 128, 256, 512]
    assert all(m.output.shape[-1] == 1 and m.output.shape[1:3] == a.output.shape[1:3] for a, m in zip(adds, maps))
    assert tuple(model.get_layer("avg_pool").input.shape[1:]) == (7, 7, DEFAULT_STAGE_WIDTHS[-1]) == (7, 7, 512)
    assert kerasmer.model_info(NAME).modality == "frame"


def _plain_resnet10(input_shape, num_classes=1000):
    """A plain (torchvision-layout) ResNet-10 under our layer names, as ImageNet weights would be saved:
    7x7 stem, one basic block per stage, identity shortcut in stage 1, 1x1 projection in stages 2-4."""
    def conv_bn(x, filters, kernel, strides, name):
        x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                                name=f"{name}_conv")(x)
        return keras.layers.BatchNormalization(name=f"{name}_bn")(x)

    inputs = keras.Input(input_shape)
    x = keras.layers.ReLU()(conv_bn(inputs, 64, 7, 2, "stem"))
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for s, width in enumerate((64, 128, 256, 512), start=1):
        b, strides = f"stage{s}_block1", (1 if s == 1 else 2)
        shortcut = x if s == 1 else conv_bn(x, width, 1, strides, f"{b}_1")
        y = keras.layers.ReLU()(conv_bn(x, width, 3, strides, f"{b}_2"))
        x = keras.layers.ReLU()(keras.layers.Add()([shortcut, conv_bn(y, width, 3, 1, f"{b}_3")]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="predictions")(x))


def test_default_takes_resnet10_weights_by_layer_name(tmp_path):
    keras.utils.set_random_seed(0)
    plain = _plain_resnet10((64, 64, 3))  # weights do not depend on the input size
    _perturb(plain, seed=11)
    plain.save(tmp_path / "resnet10.keras")
    model = kerasmer.build_model(NAME, input_shape=(64, 64, 3))
    report = load_weights_by_name(model, tmp_path / "resnet10.keras", strict_shapes=False)
    sources = [layer.name for layer in plain.layers if layer.weights]
    assert sorted(report.matched) == sorted(n for n in sources if n != "predictions")
    assert report.shape_mismatch == ["predictions"] and report.unmatched_source == []
    # Left fresh: the attention embeddings, stage 1's L^c1 (an identity in ResNet-10) and the 5-class head.
    fresh = {n for n in report.unmatched_target if not is_attention_layer(n)}
    assert fresh == {"stage1_block1_1_conv", "stage1_block1_1_bn", "predictions"}
    for name in sources:
        if name != "predictions":
            for got, want in zip(model.get_layer(name).get_weights(), plain.get_layer(name).get_weights()):
                np.testing.assert_array_equal(got, want)


def test_block_computes_equation_2():
    model = _tiny(seed=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    b = "stage2_block1"
    names = [f"{b}_1_bn", f"{b}_2_relu", f"{b}_3_bn", f"{b}_out"]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    l1, l2, l3, out = (np.asarray(t) for t in probe(x, training=False))
    kernel, bias = model.get_layer(f"{b}_attn_embed").get_weights()
    m = (np.concatenate([l1, l2, l3], -1) @ kernel[0, 0] + bias).mean(-1, keepdims=True)
    np.testing.assert_allclose(out, np.maximum((l1 + l3) * (1 + m), 0), rtol=1e-4, atol=1e-5)


def test_baseline_is_the_attention_model_without_attention_layers():
    base, full = _tiny(micro_attention=False), _tiny()
    full_names = [layer.name for layer in full.layers if layer.weights]
    base_names = [layer.name for layer in base.layers if layer.weights]
    assert base_names == [n for n in full_names if not is_attention_layer(n)]
    assert not any(is_attention_layer(layer.name) for layer in base.layers)
    assert base.name.endswith("baseline")


def _perturb(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.1 + (1.0 if "variance" in w.path else 0.0))


def test_init_from_baseline_copies_everything_but_attention(tmp_path):
    base = _tiny(seed=2, micro_attention=False, num_classes=5)  # e.g. five macro-expression classes
    _perturb(base, seed=3)
    path = tmp_path / "base.keras"
    base.save(path)
    model = _tiny(seed=4, num_classes=3)  # fine-tuned on a 3-class micro-expression set
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}
    report = init_from_baseline(model, path)
    attention = sorted(n for n in before if is_attention_layer(n))
    assert attention and sorted(set(report.unmatched_target) - {"predictions"}) == attention
    for layer in model.layers:
        if not layer.weights:
            continue
        if is_attention_layer(layer.name) or layer.name == "predictions":  # fresh, or a different head
            for got, want in zip(layer.get_weights(), before[layer.name]):
                np.testing.assert_array_equal(got, want)
        else:
            for got, want in zip(layer.get_weights(), base.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(got, want)


def test_zero_initialised_attention_starts_at_the_baseline_function():
    base = _tiny(seed=5, micro_attention=False)
    _perturb(base, seed=6)
    model = _tiny(seed=7, attention_initializer="zeros")
    init_from_baseline(model, base)
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x, training=False)), np.asarray(base(x, training=False)),
                               rtol=1e-5, atol=1e-6)


def test_init_from_baseline_rejects_mismatches_and_leaves_model_untouched():
    model = _tiny(seed=8)
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match="attention layers"):
        init_from_baseline(model, _tiny(seed=9))  # "baseline" built with attention
    with pytest.raises(ValueError, match="stage2_block1_1_conv"):
        init_from_baseline(model, _tiny(seed=9, micro_attention=False, stage_widths=(4, 16)))
    with pytest.raises(ValueError, match="stage2_block2"):
        init_from_baseline(model, _tiny(seed=9, micro_attention=False, stage_blocks=(1, 1)))
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    with pytest.raises(ValueError, match="no micro-attention layers"):
        init_from_baseline(_tiny(micro_attention=False), _tiny(micro_attention=False))


def test_attention_map_model():
    model = _tiny()
    maps = attention_map_model(model)(np.zeros((1, 32, 32, 3), "float32"))
    assert [tuple(m.shape) for m in maps] == [(1, 8, 8, 1), (1, 4, 4, 1), (1, 4, 4, 1)]


def test_bad_stage_spec_raises():
    with pytest.raises(ValueError, match="stage_blocks"):
        kerasmer.build_model(NAME, stage_blocks=(1, 1), stage_widths=(8,))
    with pytest.raises(ValueError, match="input_shape"):
        kerasmer.build_model(NAME, input_shape=(13, 64, 64, 3))
