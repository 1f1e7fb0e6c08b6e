"""Residual Attention Networks (Attention-56/92), EmoResNet and LARNet.

References:
    F. Wang et al., "Residual Attention Network for Image Classification",
    CVPR 2017 (the attention module, p=1, t=2, r=1).
    M. A. Hashmi et al., "LARNet: Real-Time Detection of Facial Micro
    Expression Using Lossless Attention Residual Network", Sensors 21(4) 1098,
    2021: §3 eqs. (1)-(6), §4.1, Table 1, Table 2, §4.1.1-4.1.3.

Readings chosen where the LARNet paper is ambiguous (how the three stages
connect, where the L2 penalty goes, the EmoResNet bottleneck widths) are in
``docs/architectures.md``.

Layer names follow keras.applications: ``conv1_conv``, ``res3`` (the residual
unit at 28x28), ``att3_2`` (the second attention module at 28x28), ``res5_1``,
``post_bn``, ``avg_pool``, ``predictions``; LARNet prefixes its stages with
``stage1_`` (Attention-92), ``stage2_`` (Attention-56) and ``stage3_``
(EmoResNet), so saved Attention-92/56 weights load into it by name.
"""

from __future__ import annotations

import keras

from kerasmer.core.precision import current_policy
from kerasmer.layers.biased import Conv2D
from kerasmer.layers.normalization import BatchNormalization
from kerasmer.layers.attention import ATTENTION_ACTIVATIONS, AttentionActivation, BilinearResize
from kerasmer.models.common import classifier
from kerasmer.models.registry import register_model
from kerasmer.models.transfer import freeze_layers, load_weights_by_name

# Attention modules per level (56x56, 28x28, 14x14 at 224 input), Table 2.
ATTENTION_SPECS = {56: (1, 1, 1), 92: (1, 2, 3)}
# Encoder depth (max-pool steps of the soft mask) per level: every level's
# mask bottoms out at 7x7 for a 224 input (§4.1.1).
ATTENTION_ENCODER_DEPTHS = (3, 2, 1)
# (bottleneck filters, stride) of the residual unit opening each level (Table 2).
ATTENTION_LEVELS = ((64, 1), (128, 2), (256, 2))
# The last level: three (512, 512, 2048) units, the first with stride 2.
ATTENTION_TOP = (512, 3)

# EmoResNet (§4.1.3): (output channels, stride, encoder depth) per attention
# level, then the output channels of the three final residual units.
EMORESNET_LEVELS = ((128, 1, 2), (256, 2, 1), (512, 2, 1))
EMORESNET_TOP = (1024, 1024, 1024)

LARNET_CLASSES = ("disgust", "fear", "happiness", "others", "repression", "sadness", "surprise")


# --------------------------------------------------------------------------- blocks

def residual_unit(x, filters, *, out_filters=None, stride=1, name):
    """Pre-activation bottleneck residual unit (BN-ReLU-conv x3).

    The shortcut is the identity when the shapes match; a strided 1x1
    projection (on the pre-activated input) only when the channels or the
    stride change.  A projection on every unit is what inflates some public
    ports of Attention-56 to ~49.7M parameters.

    Args:
        x: input (batch, H, W, C).
        filters: bottleneck width (the 1x1 and 3x3 convs).
        out_filters: output channels; defaults to ``4 * filters``.
        stride: stride of the 3x3 conv and of the projection.
        name: layer-name prefix.

    Returns:
        The output tensor (batch, H/stride, W/stride, out_filters).
    """
    out_filters = out_filters or 4 * filters
    preact = BatchNormalization(name=f"{name}_preact_bn")(x)
    preact = keras.layers.ReLU(name=f"{name}_preact_relu")(preact)
    if stride != 1 or x.shape[-1] != out_filters:
        shortcut = Conv2D(out_filters, 1, strides=stride, name=f"{name}_shortcut")(preact)
    else:
        shortcut = x
    y = Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    y = BatchNormalization(name=f"{name}_1_bn")(y)
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = BatchNormalization(name=f"{name}_2_bn")(y)
    y = keras.layers.ReLU(name=f"{name}_2_relu")(y)
    y = Conv2D(out_filters, 1, name=f"{name}_3_conv")(y)
    return keras.layers.Add(name=f"{name}_out")([shortcut, y])


def soft_mask_branch(x, encoder_depth, *, activation="mixed", name):
    """Encoder-decoder soft mask M(x) with the same shape as ``x``.

    Down: ``encoder_depth`` max-pools (3x3, stride 2), each followed by one
    residual unit; a second unit at the bottom; skip units on every encoder
    level but the bottom.  Up: bilinear resize to the skip tensor's size, add
    the skip, one residual unit; a last resize to ``x``'s size; then
    BN-ReLU-1x1 conv twice and the attention activation.

    Args:
        x: the attention module's input (batch, H, W, C).
        encoder_depth: number of max-pool steps (>= 1).
        activation: ``"mixed"``, ``"channel"`` or ``"spatial"`` (LARNet eqs. 4-6).
        name: layer-name prefix (the mask is ``f"{name}_activation"``).

    Returns:
        The mask tensor, shape of ``x``.
    """
    channels = x.shape[-1]
    filters = channels // 4
    skips = []
    y = x
    for level in range(1, encoder_depth + 1):
        y = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_down{level}_pool")(y)
        y = residual_unit(y, filters, name=f"{name}_down{level}")
        if level < encoder_depth:
            skips.append(residual_unit(y, filters, name=f"{name}_skip{level}"))
    y = residual_unit(y, filters, name=f"{name}_bottom")
    for level in range(encoder_depth - 1, 0, -1):
        skip = skips[level - 1]
        y = BilinearResize(name=f"{name}_up{level}_resize")([y, skip])
        y = keras.layers.Add(name=f"{name}_up{level}_add")([y, skip])
        y = residual_unit(y, filters, name=f"{name}_up{level}")
    if activation == "spatial" and tuple(y.shape[1:3]) == (1, 1):
        # Eq. 6 standardises each channel over space: a mask upsampled from a
        # single pixel is constant, standardises to 0 and never trains.
        raise ValueError(f"attention_activation='spatial' needs a mask bottom of at least 2x2, but {name} "
                         f"pools {tuple(x.shape[1:3])} to 1x1: use a larger input_shape")
    y = BilinearResize(name=f"{name}_up0_resize")([y, x])
    for i in (1, 2):
        y = BatchNormalization(name=f"{name}_out{i}_bn")(y)
        y = keras.layers.ReLU(name=f"{name}_out{i}_relu")(y)
        y = Conv2D(channels, 1, name=f"{name}_out{i}_conv")(y)
    return AttentionActivation(activation, name=f"{name}_activation")(y)


def attention_module(x, encoder_depth, *, activation="mixed", residual_attention=True, name):
    """Attention module (Wang et al. 2017, p=1, t=2, r=1).

    One pre-processing residual unit, then a trunk of two residual units T and
    the soft mask M, combined as H = (1 + M)·T (attention residual learning,
    LARNet eq. 3) or H = M·T (naive attention, eq. 1), then one
    post-processing residual unit.

    Args:
        x: input (batch, H, W, C), C divisible by 4.
        encoder_depth: max-pool steps of the soft mask.
        activation: the attention activation (``"mixed"``, ``"channel"``, ``"spatial"``).
        residual_attention: True for (1 + M)·T, False for M·T.
        name: layer-name prefix (trunk ``f"{name}_trunk2_out"``, mask
            ``f"{name}_mask_activation"``, H ``f"{name}_residual"`` or
            ``f"{name}_gate"``).

    Returns:
        ``(output, mask)``: the module output and the soft-mask tensor.

    Example:
        >>> y, mask = attention_module(x, 2, name="att3_1")  # doctest: +SKIP
    """
    filters = x.shape[-1] // 4
    x = residual_unit(x, filters, name=f"{name}_pre")
    trunk = residual_unit(x, filters, name=f"{name}_trunk1")
    trunk = residual_unit(trunk, filters, name=f"{name}_trunk2")
    mask = soft_mask_branch(x, encoder_depth, activation=activation, name=f"{name}_mask")
    h = keras.layers.Multiply(name=f"{name}_gate")([mask, trunk])
    if residual_attention:
        h = keras.layers.Add(name=f"{name}_residual")([trunk, h])  # T + M·T = (1 + M)·T
    return residual_unit(h, filters, name=f"{name}_post"), mask


# --------------------------------------------------------------------------- bodies

def _check_options(input_shape, attention_activation, min_channels=1):
    if len(input_shape) != 3 or any(s is None or int(s) < 1 for s in input_shape):
        raise ValueError(f"input_shape must be a static (height, width, channels), got {input_shape!r}")
    if int(input_shape[-1]) < min_channels:
        raise ValueError(f"input_shape must have at least {min_channels} channels, got {input_shape!r}")
    if attention_activation not in ATTENTION_ACTIVATIONS:
        raise ValueError(f"attention_activation must be one of {ATTENTION_ACTIVATIONS}, got {attention_activation!r}")


def attention_body(x, modules, *, attention_activation="mixed", residual_attention=True,
                   conv1_regularizer=None, prefix=""):
    """Table 2's Attention-56/92 from conv1 to the last BN-ReLU (no head).

    Args:
        x: image tensor (batch, H, W, C).
        modules: attention modules per level, e.g. ``ATTENTION_SPECS[92]``.
        attention_activation: the soft masks' activation.
        residual_attention: (1 + M)·T when True, M·T when False.
        conv1_regularizer: kernel regularizer of the first conv (LARNet's
            "regularization = 0.01 ... in their first layer").
        prefix: prepended to every layer name (``"stage1_"`` in LARNet).

    Returns:
        ``(features, masks)``: the (batch, H/32, W/32, 2048) map and the list
        of soft-mask tensors, from the input side to the output side.
    """
    p = prefix
    x = Conv2D(64, 7, strides=2, padding="same", use_bias=False,
               kernel_regularizer=conv1_regularizer, name=f"{p}conv1_conv")(x)
    x = BatchNormalization(name=f"{p}conv1_bn")(x)
    x = keras.layers.ReLU(name=f"{p}conv1_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{p}pool1_pool")(x)
    masks = []
    for level, ((filters, stride), n, depth) in enumerate(zip(ATTENTION_LEVELS, modules, ATTENTION_ENCODER_DEPTHS), 2):
        x = residual_unit(x, filters, stride=stride, name=f"{p}res{level}")
        for k in range(1, n + 1):
            x, mask = attention_module(x, depth, activation=attention_activation,
                                       residual_attention=residual_attention, name=f"{p}att{level}_{k}")
            masks.append(mask)
    filters, units = ATTENTION_TOP
    for k in range(1, units + 1):
        x = residual_unit(x, filters, stride=2 if k == 1 else 1, name=f"{p}res5_{k}")
    x = BatchNormalization(name=f"{p}post_bn")(x)
    x = keras.layers.ReLU(name=f"{p}post_relu")(x)
    return x, masks


def emoresnet_body(x, *, attention_activation="mixed", residual_attention=True, prefix=""):
    """§4.1.3's EmoResNet from its 5x5 conv to the last BN-ReLU (no head).

    Args:
        x: input (batch, 32, 32, C) in the paper; other sizes work.
        attention_activation, residual_attention: as for :func:`attention_module`.
        prefix: prepended to every layer name (``"stage3_"`` in LARNet).

    Returns:
        ``(features, masks)``: the (batch, H/8, W/8, 1024) map and the soft masks.
    """
    p = prefix
    x = Conv2D(32, 5, padding="same", use_bias=False, name=f"{p}conv1_conv")(x)
    x = BatchNormalization(name=f"{p}conv1_bn")(x)
    x = keras.layers.ReLU(name=f"{p}conv1_relu")(x)
    x = keras.layers.MaxPooling2D(2, name=f"{p}pool1_pool")(x)
    masks = []
    for level, (out_filters, stride, depth) in enumerate(EMORESNET_LEVELS, 2):
        x = residual_unit(x, out_filters // 4, stride=stride, name=f"{p}res{level}")
        x, mask = attention_module(x, depth, activation=attention_activation,
                                   residual_attention=residual_attention, name=f"{p}att{level}_1")
        masks.append(mask)
    for k, out_filters in enumerate(EMORESNET_TOP, 1):
        x = residual_unit(x, out_filters // 4, name=f"{p}res5_{k}")
    x = BatchNormalization(name=f"{p}post_bn")(x)
    x = keras.layers.ReLU(name=f"{p}post_relu")(x)
    return x, masks


def _finish(inputs, features, masks, num_classes, *, policy, dropout, kernel_regularizer, return_attention, name):
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    outputs = classifier(x, num_classes, policy=policy, dropout=dropout, kernel_regularizer=kernel_regularizer)
    if return_attention:
        return keras.Model(inputs, [outputs, *masks], name=name)
    return keras.Model(inputs, outputs, name=name)


def attention_outputs(model: keras.Model) -> keras.Model:
    """A model with the same input whose outputs are ``[probabilities, *masks]``.

    Works on any (e.g. trained and reloaded) single-output model of this
    family: the masks are the outputs of its :class:`AttentionActivation`
    layers, in the order the layers were built (input side first; in LARNet
    stage 1, then stage 2, then stage 3).  The new model shares weights with
    ``model``.

    Raises:
        ValueError: ``model`` has no attention layer.

    Example:
        >>> viz = attention_outputs(keras.saving.load_model("larnet.keras"))  # doctest: +SKIP
        >>> probs, *masks = viz(images)                                       # doctest: +SKIP
    """
    mask_layers = [layer for layer in model.layers if isinstance(layer, AttentionActivation)]
    if not mask_layers:
        raise ValueError(f"attention_outputs: model {model.name!r} has no AttentionActivation layer")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, [model.outputs[0], *[layer.output for layer in mask_layers]],
                       name=f"{model.name}_attention")


# --------------------------------------------------------------------------- models

def _attention_net(depth, *, num_classes, input_shape, attention_activation, residual_attention,
                   dropout, l2, return_attention):
    _check_options(input_shape, attention_activation)
    policy = current_policy()
    inputs = keras.Input(shape=input_shape, name="image")
    features, masks = attention_body(inputs, ATTENTION_SPECS[depth], attention_activation=attention_activation,
                                     residual_attention=residual_attention)
    reg = keras.regularizers.L2(l2) if l2 else None
    return _finish(inputs, features, masks, num_classes, policy=policy, dropout=dropout, kernel_regularizer=reg,
                   return_attention=return_attention, name=f"attention{depth}")


_ATTENTION_DOC = """Build Attention-{depth} (LARNet Table 2; Wang et al. 2017).

    Args:
        num_classes: number of classes (Table 2's count uses 1000).
        input_shape: (H, W, C); 224x224x3 in the paper, any static size works
            (the soft masks resize to their skip tensors).
        attention_activation: ``"mixed"`` (eq. 4, default), ``"channel"``
            (eq. 5) or ``"spatial"`` (eq. 6).
        residual_attention: True for H = (1 + M)·T (eq. 3), False for naive
            attention H = M·T (eq. 1).
        dropout: dropout before the classifier (LARNet: 0).
        l2: L2 penalty of the classifier kernel (LARNet §4.1: 0.01; 0 disables it).
        return_attention: if True the model's outputs are
            ``[probabilities, mask_1, ..., mask_{n}]``, the soft masks in build
            order (``att2_1``, ``att3_1``, ...).

    Returns:
        A ``keras.Model`` named ``"attention{depth}"``.

    Example:
        >>> model = kerasmer.build_model("attention{depth}", num_classes=7)  # doctest: +SKIP
    """


@register_model(
    "attention56",
    input_shape=(224, 224, 3),
    modality="frame",
    num_classes=7,
    paper="Wang et al., Residual Attention Network, CVPR 2017; as Table 2 of Hashmi et al., LARNet, Sensors 2021",
    paper_params=31_900_000,
    paper_params_config={"num_classes": 1000},
    params_rtol=0.05,
    test_input_shape=(64, 64, 3),
    class_names=LARNET_CLASSES,
    description="Residual Attention Network with 3 attention modules (LARNet stage 2)",
    recipe="larnet",
)
def attention56(*, num_classes, input_shape, attention_activation="mixed", residual_attention=True,
                dropout=0.0, l2=0.01, return_attention=False):
    return _attention_net(56, num_classes=num_classes, input_shape=input_shape,
                          attention_activation=attention_activation, residual_attention=residual_attention,
                          dropout=dropout, l2=l2, return_attention=return_attention)


@register_model(
    "attention92",
    input_shape=(224, 224, 3),
    modality="frame",
    num_classes=7,
    paper="Wang et al., Residual Attention Network, CVPR 2017; as Table 2 of Hashmi et al., LARNet, Sensors 2021",
    paper_params=51_300_000,
    paper_params_config={"num_classes": 1000},
    params_rtol=0.05,
    test_input_shape=(64, 64, 3),
    class_names=LARNET_CLASSES,
    description="Residual Attention Network with 6 attention modules (LARNet stage 1)",
    recipe="larnet",
)
def attention92(*, num_classes, input_shape, attention_activation="mixed", residual_attention=True,
                dropout=0.0, l2=0.01, return_attention=False):
    return _attention_net(92, num_classes=num_classes, input_shape=input_shape,
                          attention_activation=attention_activation, residual_attention=residual_attention,
                          dropout=dropout, l2=l2, return_attention=return_attention)


attention56.__doc__ = _ATTENTION_DOC.replace("{depth}", "56")
attention92.__doc__ = _ATTENTION_DOC.replace("{depth}", "92")


@register_model(
    "emoresnet",
    input_shape=(32, 32, 32),
    modality="frame",
    num_classes=7,
    paper="Hashmi et al., LARNet, Sensors 2021, §4.1.3 (Attention EmoResNet)",
    test_input_shape=(32, 32, 8),
    class_names=LARNET_CLASSES,
    description="LARNet's stage 3: a small residual attention network on a 32x32 map",
    recipe="larnet",
)
def emoresnet(*, num_classes, input_shape, attention_activation="mixed", residual_attention=True,
              dropout=0.0, return_attention=False):
    """Build EmoResNet (LARNet stage 3, §4.1.3) as a standalone model.

    Args:
        num_classes: number of classes (7 in the paper).
        input_shape: (H, W, C); the paper's is 32x32x32.
        attention_activation, residual_attention: as for ``attention56``.
        dropout: dropout before the classifier (the paper has none).
        return_attention: outputs ``[probabilities, mask_1, mask_2, mask_3]``.

    Returns:
        A ``keras.Model`` named ``"emoresnet"``.  The paper's 4x4 average pool
        (stride 1) on the 4x4 map is a global average pool, which we use so
        other input sizes work.

    Example:
        >>> model = kerasmer.build_model("emoresnet")  # doctest: +SKIP
    """
    _check_options(input_shape, attention_activation)
    policy = current_policy()
    inputs = keras.Input(shape=input_shape, name="features")
    features, masks = emoresnet_body(inputs, attention_activation=attention_activation,
                                     residual_attention=residual_attention)
    return _finish(inputs, features, masks, num_classes, policy=policy, dropout=dropout, kernel_regularizer=None,
                   return_attention=return_attention, name="emoresnet")


def _load_stage(model, source, stage, argument):
    """Load saved Attention-92/56 weights into LARNet's ``stage{stage}_`` layers."""
    prefix = f"stage{stage}_"
    report = load_weights_by_name(model, source, rename=lambda n: prefix + n)
    missing = [n for n in report.unmatched_target if n.startswith(prefix)]
    unused = [n for n in report.unmatched_source if n != "predictions"]
    if not report.matched or missing or unused:
        raise ValueError(f"larnet: {argument} must be an Attention-{92 if stage == 1 else 56} model or .keras "
                         f"file; {len(missing)} {prefix}* layers got no weights (e.g. {missing[:3]}) and "
                         f"{len(unused)} source layers found no target (e.g. {unused[:3]})")
    return report


@register_model(
    "larnet",
    input_shape=(224, 224, 3),
    modality="frame",
    num_classes=7,
    paper="Hashmi et al., LARNet: Real-Time Detection of Facial Micro Expression Using Lossless "
          "Attention Residual Network, Sensors 21(4) 1098, 2021",
    # §4.2.2: "224 MB with 21 M learnable parameters".  Not reconcilable with
    # the Table 2 stages it stacks (Attention-92 alone is 51.3M); see
    # docs/architectures.md, so the count is reported but not asserted.
    paper_params=21_000_000,
    paper_params_config={"num_classes": 7},
    params_rtol=None,
    test_input_shape=(64, 64, 3),
    class_names=LARNET_CLASSES,
    description="Attention-92 and Attention-56 on the image, concatenated, then EmoResNet (3 stages)",
    recipe="larnet",
)
def larnet(*, num_classes, input_shape, attention_activation="mixed", residual_attention=True,
           l2=0.01, dropout=0.0, fusion_channels=32, stage3_size=(32, 32), freeze_stages=False,
           stage1_weights=None, stage2_weights=None, return_attention=False):
    """Build LARNet: Attention-92 and Attention-56 on the image, fused, then EmoResNet.

    Stage 1 (Attention-92) and stage 2 (Attention-56) both read the 224x224x3
    image (§4.1: "The former two blocks take the input shape 224x224x3"); their
    7x7x2048 maps are concatenated (§4.1), reduced by a 1x1 conv-BN-ReLU to
    ``fusion_channels`` and bilinearly resized to ``stage3_size`` (Fig. 2a:
    7x7 maps, then a 32x32 input to stage 3), which EmoResNet classifies.  The
    stage heads are dropped.  Why this reading: docs/architectures.md.

    Args:
        num_classes: number of classes (7: ``LARNET_CLASSES``).
        input_shape: (H, W, C) of the face image, 224x224x3 in the paper.
        attention_activation: ``"mixed"`` (default, Table 1's best),
            ``"channel"`` or ``"spatial"``, used in all three stages.
        residual_attention: (1 + M)·T when True, naive M·T when False.
        l2: L2 penalty on the first conv kernel of stages 1 and 2 (§4.1).
        dropout: dropout before the final classifier (the paper has none).
        fusion_channels: channels of the fused map fed to stage 3 (§4.1.3: 32).
        stage3_size: spatial size of stage 3's input (§4.1.3: 32x32).
        freeze_stages: freeze stages 1 and 2 (the paper froze them); their
            BatchNorm layers then run in inference mode.  Off by default:
            random stages should train.  In ``kerasmer train`` the ``larnet``
            recipe freezes them when ``--init-from`` initialised them
            (``Recipe.freeze_pretrained``, :func:`kerasmer.models.transfer.freeze_initialised`).
        stage1_weights: an Attention-92 ``keras.Model`` or ``.keras`` path whose
            weights initialise stage 1 (by layer name; its head is ignored).
        stage2_weights: the same for stage 2 from an Attention-56.
        return_attention: outputs ``[probabilities, *masks]``: 6 stage-1 masks,
            3 stage-2 masks, 3 stage-3 masks, each stage in build order.

    Returns:
        A ``keras.Model`` named ``"larnet"``.

    Raises:
        ValueError: bad options, or stage weights that do not fit.

    Example:
        >>> model = kerasmer.build_model("larnet", freeze_stages=True,
        ...                              stage1_weights="attention92.keras",
        ...                              stage2_weights="attention56.keras")  # doctest: +SKIP
    """
    _check_options(input_shape, attention_activation)
    stage3_size = tuple(int(s) for s in stage3_size)
    if len(stage3_size) != 2 or min(stage3_size) < 8:
        raise ValueError(f"stage3_size must be (height, width) of at least 8 each, got {stage3_size!r}")
    if int(fusion_channels) < 1:
        raise ValueError(f"fusion_channels must be positive, got {fusion_channels!r}")
    policy = current_policy()
    common = dict(attention_activation=attention_activation, residual_attention=residual_attention)
    reg = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape=input_shape, name="image")
    f1, masks1 = attention_body(inputs, ATTENTION_SPECS[92], conv1_regularizer=reg, prefix="stage1_", **common)
    f2, masks2 = attention_body(inputs, ATTENTION_SPECS[56], conv1_regularizer=reg, prefix="stage2_", **common)
    x = keras.layers.Concatenate(name="fusion_concat")([f1, f2])
    x = Conv2D(int(fusion_channels), 1, use_bias=False, name="fusion_conv")(x)
    x = BatchNormalization(name="fusion_bn")(x)
    x = keras.layers.ReLU(name="fusion_relu")(x)
    x = BilinearResize(size=stage3_size, name="fusion_resize")(x)
    f3, masks3 = emoresnet_body(x, prefix="stage3_", **common)
    model = _finish(inputs, f3, masks1 + masks2 + masks3, num_classes, policy=policy, dropout=dropout,
                    kernel_regularizer=None, return_attention=return_attention, name="larnet")
    if stage1_weights is not None:
        _load_stage(model, stage1_weights, 1, "stage1_weights")
    if stage2_weights is not None:
        _load_stage(model, stage2_weights, 2, "stage2_weights")
    if freeze_stages:
        freeze_layers(model, "stage1_*")
        freeze_layers(model, "stage2_*")
    return model
