"""Residual network with micro-attention units, on the apex frame.

Reference: C. Wang, M. Peng, T. Bi, T. Chen, "Micro-Attention for
Micro-Expression Recognition", Neurocomputing, 2020.  §3.1 (a "stack of 10
residual blocks", read as the ResNet-10 of §3.3's ImageNet initialisation),
§3.2 (eqs. 1–2, Fig. 2), §3.3 (transfer learning) and Table 3 (4.9M
parameters without attention, 5.9M with it).  The paper
classifies the AAM-cropped apex frame at 224×224 (§4.1), hence modality
``"frame"``.  Readings chosen where the paper is ambiguous (widths, strides,
BN and ReLU placement, embedding width) are in ``docs/architectures.md``.

Transfer learning as in §3.3: train the attention-free network
(``micro_attention=False``), e.g. on macro-expressions, then initialise the
attention network from it with :func:`init_from_baseline`; the attention
embeddings stay freshly initialised.
"""

from __future__ import annotations

import keras

from kerasmer.core.precision import current_policy
from kerasmer.layers.biased import Conv2D
from kerasmer.layers.normalization import BatchNormalization
from kerasmer.layers.micro_attention import ChannelMean, MicroAttentionGate
from kerasmer.models.common import classifier
from kerasmer.models.registry import register_model
from kerasmer.models.transfer import TransferReport, as_model, load_weights_by_name

# The five regrouped emotions of CASME II / SAMM used in the paper (§4.1).
MICRO_ATTENTION_CLASSES = ("happiness", "surprise", "anger", "disgust", "sadness")

# Default: ResNet-10 (one basic block per stage, ImageNet widths), the network
# §3.3 initialises from ImageNet (reference [17]); it matches Table 3 (4.92M /
# 5.96M) and takes ResNet-10 weights by layer name.  Stages halve the
# resolution: 56 -> 28 -> 14 -> 7 on a 224 input.
RESNET10_STAGE_BLOCKS = (1, 1, 1, 1)
RESNET10_STAGE_WIDTHS = (64, 128, 256, 512)
DEFAULT_STAGE_BLOCKS = RESNET10_STAGE_BLOCKS
DEFAULT_STAGE_WIDTHS = RESNET10_STAGE_WIDTHS
# The option of reading §3.1's "10 residual blocks" literally: 3+2+3+2 blocks,
# widths fitted to Table 3 (5.04M / 5.94M).  No pretrained weights fit it.
FITTED_STAGE_BLOCKS = (3, 2, 3, 2)
FITTED_STAGE_WIDTHS = (40, 80, 160, 320)

# Every micro-attention layer's name contains this tag; nothing else's does.
ATTENTION_TAG = "_attn_"


def _conv_bn(x, filters, kernel, strides, name, relu=False):
    x = Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def residual_attention_block(x, filters, strides=1, *, micro_attention=True,
                             attention_initializer="glorot_uniform", name="block"):
    """One residual (attention) block of Fig. 2.

    L^c1 is the 1×1 projection shortcut, L^c2 and L^c3 the two 3×3 convs (each
    conv followed by batch norm, ReLU after L^c2); T(X) = L^c1 + L^c3.  With
    ``micro_attention`` the unit computes M(X) = mean_c(Conv1×1(concat(L^c1,
    L^c2, L^c3))) and O(X) = T(X)·(1 + M(X)).  The block output is ReLU(O(X))
    (ReLU(T(X)) without attention), as after a classic residual addition.

    Args:
        x: input feature map (batch, H, W, C_in).
        filters: output channels of the three convs.
        strides: stride of L^c1 and L^c2 (2 halves the resolution).
        micro_attention: add the micro-attention unit.
        attention_initializer: initializer of the embedding conv's kernel.
        name: prefix of the layer names; attention layers are ``{name}_attn_*``.

    Returns:
        The block output (batch, H/strides, W/strides, filters).
    """
    l1 = _conv_bn(x, filters, 1, strides, f"{name}_1")
    l2 = _conv_bn(x, filters, 3, strides, f"{name}_2", relu=True)
    l3 = _conv_bn(l2, filters, 3, 1, f"{name}_3")
    t = keras.layers.Add(name=f"{name}_add")([l1, l3])
    if micro_attention:
        cat = keras.layers.Concatenate(name=f"{name}_attn_concat")([l1, l2, l3])
        # Embedding width = the residual output's width ("the size of the
        # attentional feature map ... is equal with its residual output").
        emb = Conv2D(filters, 1, kernel_initializer=attention_initializer, name=f"{name}_attn_embed")(cat)
        m = ChannelMean(name=f"{name}_attn_map")(emb)
        t = MicroAttentionGate(name=f"{name}_attn_gate")([t, m])
    return keras.layers.ReLU(name=f"{name}_out")(t)


def _check_stages(stage_blocks, stage_widths):
    blocks, widths = tuple(stage_blocks), tuple(stage_widths)
    if not blocks or len(blocks) != len(widths):
        raise ValueError(f"stage_blocks {blocks} and stage_widths {widths} must be non-empty and of equal length")
    if any(int(b) < 1 for b in blocks) or any(int(w) < 1 for w in widths):
        raise ValueError(f"stage_blocks {blocks} and stage_widths {widths} must be positive integers")
    return blocks, widths


@register_model(
    "micro_attention_resnet",
    input_shape=(224, 224, 3),
    modality="frame",
    num_classes=5,
    paper="Wang, Peng, Bi, Chen, Micro-Attention for Micro-Expression Recognition, Neurocomputing 2020",
    # Table 3: 5.9M with micro-attention (4.9M without; tests/models/test_micro_attention.py).
    # ResNet-10 has 5,958,021 trainable (+1.0%; the fitted option +0.5%).
    paper_params=5_900_000,
    paper_params_config={"num_classes": 5},
    params_rtol=0.015,
    test_input_shape=(64, 64, 3),
    class_names=MICRO_ATTENTION_CLASSES,
    description="ResNet-10 with micro-attention units on the apex frame (5.9M params)",
    recipe="micro_attention",
)
def micro_attention_resnet(*, num_classes, input_shape, micro_attention=True,
                           stage_blocks=DEFAULT_STAGE_BLOCKS, stage_widths=DEFAULT_STAGE_WIDTHS,
                           dropout=0.0, attention_initializer="glorot_uniform"):
    """Build the residual network with (or without) micro-attention units.

    Args:
        num_classes: number of classes.
        input_shape: (H, W, C) of the apex frame; the paper uses 224×224×3.
        micro_attention: False builds the paper's attention-free baseline
            ("Residual Network [17]" in Table 3), whose layer names are those of
            the attention model minus the ``*_attn_*`` layers.
        stage_blocks: residual blocks per stage (default ResNet-10: 1, 1, 1, 1).
        stage_widths: channels per stage (default 64, 128, 256, 512); every
            stage after the first starts with a stride-2 block.
            ``FITTED_STAGE_BLOCKS`` / ``FITTED_STAGE_WIDTHS`` give the
            literal 10-block reading with widths fitted to Table 3.  Layer
            names follow ``stage{s}_block{b}_{1,2,3}_{conv,bn}``, so ResNet-10
            weights saved under these names load by name
            (:func:`kerasmer.models.transfer.load_weights_by_name`).
        dropout: dropout before the classifier (the paper states none).
        attention_initializer: initializer of the attention embeddings;
            ``"zeros"`` makes a freshly transferred model compute exactly its
            baseline's function at the start of fine-tuning.

    Returns:
        A ``keras.Model`` named ``"micro_attention_resnet"`` (or
        ``"micro_attention_resnet_baseline"`` without attention).

    Raises:
        ValueError: a bad ``input_shape``, ``stage_blocks`` or ``stage_widths``.

    Example:
        >>> base = kerasmer.build_model("micro_attention_resnet", micro_attention=False)  # doctest: +SKIP
        >>> # ... train base on macro-expression apex frames ...
        >>> model = kerasmer.build_model("micro_attention_resnet")  # doctest: +SKIP
        >>> init_from_baseline(model, base)                           # doctest: +SKIP
    """
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"micro_attention_resnet: input_shape must be (H, W, C), got {tuple(input_shape)}")
    blocks, widths = _check_stages(stage_blocks, stage_widths)
    policy = current_policy()
    inputs = keras.Input(shape=input_shape, name="apex_frame")
    x = _conv_bn(inputs, widths[0], 7, 2, "stem", relu=True)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for s, (n_blocks, width) in enumerate(zip(blocks, widths), start=1):
        for b in range(1, n_blocks + 1):
            strides = 2 if (s > 1 and b == 1) else 1
            x = residual_attention_block(x, width, strides, micro_attention=micro_attention,
                                         attention_initializer=attention_initializer, name=f"stage{s}_block{b}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = classifier(x, num_classes, policy=policy, dropout=dropout)
    name = "micro_attention_resnet" if micro_attention else "micro_attention_resnet_baseline"
    return keras.Model(inputs, outputs, name=name)


def is_attention_layer(name: str) -> bool:
    """Whether a layer name belongs to a micro-attention unit."""
    return ATTENTION_TAG in name


def init_from_baseline(model: keras.Model, baseline, *, head: str = "predictions") -> TransferReport:
    """Initialise a micro-attention network from a trained attention-free one (§3.3).

    Weights are copied by layer name (:func:`kerasmer.models.transfer.load_weights_by_name`).
    The classifier ``head`` is copied when its shape matches and otherwise left
    freshly initialised (e.g. 5 macro-expression classes -> 3 SMIC classes).
    Before copying anything it checks that the transfer does what the paper
    does: every non-attention layer with weights receives the baseline's
    weights, and no attention layer receives anything.

    Args:
        model: the attention model (``micro_attention=True``), modified in place.
        baseline: the attention-free model, or a path to its ``.keras`` file.
        head: name of the classifier layer allowed to differ in shape.

    Returns:
        The :class:`~kerasmer.models.transfer.TransferReport`; its
        ``unmatched_target`` lists the fresh attention layers (and the head if
        its shape differed).

    Raises:
        ValueError: ``model`` has no attention layers, ``baseline`` has some,
            or some other layer could not be matched (different widths or
            blocks), naming the layers; nothing is copied then.

    Example:
        >>> base = kerasmer.build_model("micro_attention_resnet", micro_attention=False)  # doctest: +SKIP
        >>> model = kerasmer.build_model("micro_attention_resnet", num_classes=3)          # doctest: +SKIP
        >>> print(init_from_baseline(model, base).summary())                               # doctest: +SKIP
    """
    source = as_model(baseline)
    attention = [n for n in _weight_shapes(model) if is_attention_layer(n)]
    if not attention:
        raise ValueError(f"init_from_baseline: model {model.name!r} has no micro-attention layers "
                         "(build it with micro_attention=True)")
    # Check the whole transfer before copying anything, so a failed call leaves
    # the model untouched.
    dst, src = _weight_shapes(model), _weight_shapes(source)
    problems = []
    leaked = [n for n in src if is_attention_layer(n)]
    if leaked:
        problems.append(f"the baseline has attention layers (build it with micro_attention=False): {leaked}")
    bad_shapes = [n for n in src if n in dst and n != head and src[n] != dst[n]]
    if bad_shapes:
        problems.append(f"layers whose weight shapes differ from the baseline's: {bad_shapes}")
    missing = [n for n in dst if not is_attention_layer(n) and n not in src]
    if missing:
        problems.append(f"non-attention layers the baseline does not provide: {missing}")
    extra = [n for n in src if n not in dst and not is_attention_layer(n)]
    if extra:
        problems.append(f"baseline layers with no counterpart in the model: {extra}")
    if problems:
        raise ValueError("init_from_baseline: the baseline does not match the model's architecture; "
                         + "; ".join(problems))
    return load_weights_by_name(model, source, strict_shapes=False)


def _weight_shapes(model: keras.Model) -> dict:
    """Layer name -> weight shapes, for the top-level layers that have weights."""
    return {layer.name: [tuple(w.shape) for w in layer.weights] for layer in model.layers if layer.weights}


def attention_map_model(model: keras.Model) -> keras.Model:
    """A model returning every block's attention map M(X), e.g. for Fig. 4-style plots.

    Args:
        model: a micro-attention network.

    Returns:
        A ``keras.Model`` sharing ``model``'s weights, whose outputs are the
        (batch, H_b, W_b, 1) maps of the blocks in order.

    Example:
        >>> maps = attention_map_model(model)(apex_frames)  # doctest: +SKIP
    """
    outputs = [layer.output for layer in model.layers if isinstance(layer, ChannelMean)]
    if not outputs:
        raise ValueError(f"attention_map_model: model {model.name!r} has no micro-attention maps")
    return keras.Model(model.input, outputs, name=f"{model.name}_attention_maps")
