"""3D ResNet-18 and MERANet-18 (3D residual attention network) on clips.

Reference: V. R. Gajjala, S. P. T. Reddy, S. Mukherjee, S. R. Dubey,
"MERANet: Facial Micro-Expression Recognition using 3D Residual Attention
Network", ICVGIP 2021.  §3 (attention modules, residual attention block),
§4.2–4.3 (input size, initialisation), §5.2–5.3 (ablations) and
supplementary Table 2 (architecture and output sizes).  Readings chosen where
the paper is ambiguous are in ``docs/architectures.md``.

Both models take a clip ``(T, H, W, C) = (16, 112, 112, 3)`` and give, after
each stage, Table 2's output sizes (written there as C×T×H×W):
64×16×56×56, 128×8×28×28, 256×4×14×14 and 512×2×7×7.
"""

from __future__ import annotations

import keras

from kerasmer.core.precision import current_policy
from kerasmer.layers.conv import conv3d
from kerasmer.layers.normalization import BatchNormalization
from kerasmer.layers.attention3d import (
    CHANNEL_ATTENTION_KINDS,
    channel_attention_3d,
    spatiotemporal_attention_3d,
)
from kerasmer.models.common import classifier, symmetric_pad3d
from kerasmer.models.registry import register_model

PAPER = (
    "Gajjala et al., MERANet: Facial Micro-Expression Recognition using 3D Residual "
    "Attention Network, ICVGIP 2021"
)

# Basic blocks per stage, like tf-models' RESNET_SPECS (Table 2: two per stage).
RESNET3D_SPECS = {18: (2, 2, 2, 2)}
STAGE_FILTERS = (64, 128, 256, 512)
# Stem: 3×7×7 kernel; stride 1 in T and 2 in H, W turns 16×112×112 into
# Table 2's 16×56×56 (no max-pool follows: RA-block 1 is also 56×56).
STEM_KERNEL = (3, 7, 7)
STEM_STRIDES = (1, 2, 2)
# PyTorch's BatchNorm3d defaults (momentum 0.1 there is 0.9 here); the paper's
# count (two trainable weights per channel) is that of a PyTorch model.
BN_KW = dict(momentum=0.9, epsilon=1e-5)
# §4.3: Xavier-uniform weights, zero biases (BN: gamma 1, beta 0, Keras' default).
INIT_KW = dict(kernel_initializer="glorot_uniform", bias_initializer="zeros")


def _conv_bn(x, filters, kernel, *, policy, strides=1, name):
    """Conv3D (no bias: BN follows) + BN, padded symmetrically as in PyTorch.

    A strided conv is padded explicitly by ``kernel // 2`` on both sides and run
    'valid': Keras' 'same' would pad 0 before / 1 after an even-sized input, which
    shifts the sampling grid by one voxel against the 1×1×1 stride-2 shortcut
    (that one samples the even positions).  Stride-1 convs with odd kernels are
    symmetric under 'same' already.
    """
    kernel = (kernel,) * 3 if isinstance(kernel, int) else tuple(kernel)
    strides = (strides,) * 3 if isinstance(strides, int) else tuple(strides)
    padding = "same"
    if any(s != 1 for s in strides):
        x = symmetric_pad3d(x, kernel, policy=policy, name=f"{name}_pad")
        padding = "valid"
    x = conv3d(x, filters, kernel, policy=policy, strides=strides, padding=padding, use_bias=False,
               kernel_initializer=INIT_KW["kernel_initializer"], name=f"{name}_conv")
    return BatchNormalization(axis=-1, name=f"{name}_bn", **BN_KW)(x)


def basic_block_3d(x, filters, *, policy, strides=1, attention=None, name):
    """A 3D basic residual block, optionally a residual attention (RA) block.

    ``conv 3×3×3, BN, ReLU, conv 3×3×3, BN`` [``, channel attention,
    spatio-temporal attention``], then the residual add and a ReLU (eq. 12).
    The shortcut is the identity, or a 1×1×1 conv with ``strides`` plus BN when
    the shape changes (Table 2's ``downsample``).

    Args:
        x: input volume ``(batch, T, H, W, C)``.
        filters: output channels.
        policy: the model's dtype policy (a ``keras.DTypePolicy`` or a name),
            passed to every Conv3D (the bf16 guard) and attention module.
        strides: stride of the first conv and of the shortcut (1 or 2).
        attention: None for a plain block, or a dict with ``reduction``,
            ``channel_attention`` (``"conv"``/``"mlp"``) and ``st_kernel_size``.
        name: prefix for the layer names (e.g. ``"stage2_block1"``); the block's
            output is the layer ``f"{name}_out"``.

    Returns:
        The block's output volume.
    """
    shortcut = x
    if strides != 1 or int(x.shape[-1]) != filters:
        shortcut = conv3d(x, filters, 1, policy=policy, strides=strides, padding="valid", use_bias=False,
                          kernel_initializer=INIT_KW["kernel_initializer"], name=f"{name}_shortcut_conv")
        shortcut = BatchNormalization(axis=-1, name=f"{name}_shortcut_bn", **BN_KW)(shortcut)

    y = _conv_bn(x, filters, 3, policy=policy, strides=strides, name=f"{name}_1")
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = _conv_bn(y, filters, 3, policy=policy, name=f"{name}_2")
    if attention is not None:
        # Eq. (10)-(11): channel attention first, then spatio-temporal attention.
        y = channel_attention_3d(y, policy=policy, reduction=attention["reduction"],
                                 shared=attention["channel_attention"], name=f"{name}_ca")
        y = spatiotemporal_attention_3d(y, policy=policy, kernel_size=attention["st_kernel_size"], name=f"{name}_st")
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _check_clip_shape(input_shape):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 4:
        raise ValueError(f"input_shape must be a clip shape (T, H, W, C), got {input_shape!r}")
    for dim, what in zip(shape, ("T", "H", "W", "C")):
        ok = isinstance(dim, int) and not isinstance(dim, bool) and dim > 0
        if not ok and not (dim is None and what != "C"):
            raise ValueError(f"input_shape: {what} must be a positive integer, got {dim!r} in {input_shape!r}")
    return shape


def _check_kernel_size(kernel_size):
    k = (kernel_size,) * 3 if isinstance(kernel_size, int) and not isinstance(kernel_size, bool) else kernel_size
    if not (isinstance(k, (tuple, list)) and len(k) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in k)):
        raise ValueError(f"st_kernel_size must be a positive int or a (t, h, w) tuple of them, got {kernel_size!r}")
    return tuple(k)


def resnet3d(*, depth, num_classes, input_shape, attention=None, dropout=0.0, name="resnet3d"):
    """Generic 3D ResNet / MERANet builder from :data:`RESNET3D_SPECS`.

    Args:
        depth: key of :data:`RESNET3D_SPECS` (18).
        num_classes: number of classes.
        input_shape: (T, H, W, C) of the clip.
        attention: None (3D ResNet) or the RA-block options (see
            :func:`basic_block_3d`) for MERANet.
        dropout: dropout rate before the classifier (the paper uses none).
        name: model name.

    Returns:
        A ``keras.Model``; block outputs are the layers ``stage{s}_block{b}_out``.
    """
    if depth not in RESNET3D_SPECS:
        raise ValueError(f"depth must be one of {sorted(RESNET3D_SPECS)}, got {depth!r}")
    input_shape = _check_clip_shape(input_shape)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")

    policy = current_policy()
    inputs = keras.Input(shape=input_shape, name="clip")
    x = symmetric_pad3d(inputs, STEM_KERNEL, policy=policy, name="stem_pad")
    x = conv3d(x, STAGE_FILTERS[0], STEM_KERNEL, policy=policy, strides=STEM_STRIDES, padding="valid", use_bias=False,
               kernel_initializer=INIT_KW["kernel_initializer"], name="stem_conv")
    x = BatchNormalization(axis=-1, name="stem_bn", **BN_KW)(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, (blocks, filters) in enumerate(zip(RESNET3D_SPECS[depth], STAGE_FILTERS), start=1):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = basic_block_3d(x, filters, policy=policy, strides=strides, attention=attention,
                               name=f"stage{stage}_block{block}")
    x = keras.layers.GlobalAveragePooling3D(name="avg_pool")(x)
    outputs = classifier(x, num_classes, policy=policy, dropout=float(dropout))
    return keras.Model(inputs, outputs, name=name)


@register_model(
    "resnet3d18",
    input_shape=(16, 112, 112, 3),
    modality="clip",
    num_classes=3,
    paper=PAPER,
    # §5.1: "3,31,67,811" (Indian digit grouping) for the 3D ResNet baseline;
    # our conv and dense weights plus BN gamma/beta add up to it exactly, and
    # Keras also counts BN's moving mean/variance (+9,600, 0.03%).
    paper_params=33_167_811,
    paper_params_config={"num_classes": 3},
    params_rtol=0.01,
    test_input_shape=(16, 32, 32, 3),
    description="3D ResNet-18 on 16-frame clips, MERANet's baseline (33.2M params)",
    # MERANet §4.2 "Pre-Processing": "A 16-frame clip is generated around the selected apex frame"
    # (edge frames replicated when the video is shorter); the baseline is fed as MERANet is.
    sampler="centered",
    recipe="meranet",
)
def resnet3d18(*, num_classes, input_shape, dropout=0.0):
    """Build the 3D ResNet-18 baseline of MERANet (Table 2 without attention).

    Args:
        num_classes: number of classes (the paper uses 3 per dataset).
        input_shape: (T, H, W, C); the paper uses 16×112×112×3.
        dropout: dropout rate before the classifier (the paper uses none).

    Returns:
        A ``keras.Model`` named ``"resnet3d18"``.

    Example:
        >>> model = kerasmer.build_model("resnet3d18", num_classes=3)  # doctest: +SKIP
        >>> model.get_layer("stage4_block2_out").output.shape  # doctest: +SKIP
        (None, 2, 7, 7, 512)
    """
    return resnet3d(depth=18, num_classes=num_classes, input_shape=input_shape, dropout=dropout,
                    name="resnet3d18")


@register_model(
    "meranet18",
    input_shape=(16, 112, 112, 3),
    modality="clip",
    num_classes=3,
    paper=PAPER,
    # §5.1 gives 33,547,552 but also says that is 379,741 (1.1%) over the
    # baseline and "0.01% extra"; no reading of §3 reproduces 379,741 (ours adds
    # 91,088, 0.27%), so the count is not asserted here (docs/architectures.md).
    test_input_shape=(16, 32, 32, 3),
    description="MERANet-18: 3D ResNet-18 with channel + spatio-temporal attention per block",
    # §4.2 "Pre-Processing": "A 16-frame clip is generated around the selected apex frame", edge
    # frames replicated when the video is shorter: consecutive frames centred on the apex.
    sampler="centered",
    recipe="meranet",
)
def meranet18(*, num_classes, input_shape, channel_attention="conv", reduction=16, st_kernel_size=5, dropout=0.0):
    """Build MERANet-18: 3D ResNet-18 whose every block is a residual attention block.

    Each block applies, after its second conv's BN, channel attention (shared
    1×1×1-conv bottleneck with ratio ``reduction`` on average- and max-pooled
    descriptors) and then spatio-temporal attention (a ``st_kernel_size`` Conv3D
    on the channel mean and max), before the residual add and ReLU (eq. 10–12).

    Args:
        num_classes: number of classes (the paper uses 3 per dataset).
        input_shape: (T, H, W, C); the paper uses 16×112×112×3.
        channel_attention: ``"conv"`` (CN-SCNN, the paper's model) or ``"mlp"``
            (CN-SMLP, §5.2).
        reduction: channel reduction ratio r of the channel attention (paper: 16).
        st_kernel_size: kernel of the spatio-temporal attention conv, an int or
            a (t, h, w) tuple (paper: 5; §5.3 also tries 3 and 7).
        dropout: dropout rate before the classifier (the paper uses none).

    Returns:
        A ``keras.Model`` named ``"meranet18"``.

    Example:
        >>> model = kerasmer.build_model("meranet18", st_kernel_size=3)  # doctest: +SKIP
        >>> attention_map = model.get_layer("stage1_block1_st_conv").output  # doctest: +SKIP
    """
    if channel_attention not in CHANNEL_ATTENTION_KINDS:
        raise ValueError(f"channel_attention must be one of {CHANNEL_ATTENTION_KINDS}, got {channel_attention!r}")
    if not isinstance(reduction, int) or isinstance(reduction, bool) or not 1 <= reduction <= STAGE_FILTERS[0]:
        raise ValueError(f"reduction must be an integer in [1, {STAGE_FILTERS[0]}], got {reduction!r}")
    attention = dict(reduction=reduction, channel_attention=channel_attention,
                     st_kernel_size=_check_kernel_size(st_kernel_size))
    return resnet3d(depth=18, num_classes=num_classes, input_shape=input_shape, attention=attention,
                    dropout=dropout, name="meranet18")


def meranet_attention_outputs(model: keras.Model) -> keras.Model:
    """A model with ``model``'s input whose outputs are its probabilities and every block's two attention maps.

    MERANet's residual attention blocks (§3, eq. 10-11) rescale channels by a sigmoid map
    (``<block>_ca_sigmoid``, ``(batch, 1, 1, 1, C)``) and then every (t, h, w) location by another
    (``<block>_st_conv``, ``(batch, T, H, W, 1)``).  Works on a trained and reloaded model; the new model
    shares its weights.

    Args:
        model: a MERANet (``meranet18``, or any model built from :func:`basic_block_3d` with attention).

    Returns:
        A ``keras.Model`` whose output is a dict: ``"probabilities"``, then ``"<block>_ca"`` and
        ``"<block>_st"`` for each block in build order (e.g. ``"stage1_block1_ca"``).

    Raises:
        ValueError: ``model`` has no MERANet attention layer.

    Example:
        >>> maps = meranet_attention_outputs(model)(clips)  # doctest: +SKIP
        >>> maps["stage1_block1_st"].shape                  # doctest: +SKIP
        TensorShape([1, 16, 56, 56, 1])
    """
    outputs = {"probabilities": model.outputs[0]}
    for layer in model.layers:
        for suffix in ("_ca_sigmoid", "_st_conv"):
            if layer.name.endswith(suffix):
                outputs[layer.name[: -len(suffix)] + suffix[:3]] = layer.output
    if len(outputs) == 1:
        raise ValueError(f"meranet_attention_outputs: model {model.name!r} has no channel or spatio-temporal "
                         "attention layer (*_ca_sigmoid, *_st_conv); is it a MERANet?")
    return keras.Model(model.inputs[0], outputs, name=f"{model.name}_attention")
