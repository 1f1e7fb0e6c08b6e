"""Shallow convolution + multi-head self-attention models on 13-frame clips.

Reference: P. Upadhy, T. T. Verlekar, "Shallow convolution and attention-based
models for micro-expression recognition" (BITS Pilani Goa).  §2 and Fig. 1 (the three
models) and Table 1 (28M, 55M and 6M trainable parameters).

Input: 13 frames resized to 90×90, sampled onset -> apex -> offset (onset, five
frames up to the apex, the apex, five frames up to the offset, the offset), so
the apex is the middle frame, index 6.  Grayscale (C=1) or RGB (C=3) is chosen
by ``input_shape``.  Readings chosen where the paper is ambiguous (attention
size, padding, activations, RGB default) are in ``docs/architectures.md``.
"""

from __future__ import annotations

import keras

from kerasmer.core.precision import as_policy, current_policy
from kerasmer.layers.biased import Conv2D, Dense
from kerasmer.layers.conv import conv3d
from kerasmer.data import SHALLOW_AUGMENT
from kerasmer.layers.tokens import (BlocksToTokens, GridSplit, MultiHeadSelfAttention, PositionalEmbedding,
                                    TokenSelect)
from kerasmer.models.common import classifier
from kerasmer.models.registry import register_model

PAPER = ("Upadhy & Verlekar, Shallow convolution and attention-based models for micro-expression "
         "recognition")
# The five MMEW emotions of the evaluation protocol (§3, Table 2).
SHALLOW_CLASSES = ("happiness", "disgust", "fear", "surprise", "sadness")
# 13 frames of 90×90; RGB by default (see docs/architectures.md).
SHALLOW_INPUT_SHAPE = (13, 90, 90, 3)


def _check_clip(model, input_shape):
    shape = tuple(input_shape)
    if len(shape) != 4 or any(d is None or int(d) < 1 for d in shape):
        raise ValueError(f"{model}: input_shape must be a static (T, H, W, C) clip shape, got {shape}")
    if shape[-1] not in (1, 3):
        raise ValueError(f"{model}: input_shape must have C = 1 (grayscale) or 3 (RGB) channels, got {shape}")
    return shape


def _attention_key_dim(model, num_heads, attention_dim):
    if int(num_heads) < 1 or int(attention_dim) < 1 or int(attention_dim) % int(num_heads):
        raise ValueError(f"{model}: attention_dim={attention_dim} must be a positive multiple of "
                         f"num_heads={num_heads}")
    return int(attention_dim) // int(num_heads)


def _max_pool3d(x, pool_size, name, *, policy):
    """MaxPooling3D under ``policy``, computing in float32 where that would be float16.

    TensorFlow has no float16 CPU kernel for MaxPool3D (TF 2.21), so a
    mixed_float16 model would fail on CPU; a max is exact in any precision,
    so float32 only costs two casts.
    """
    policy = as_policy(policy)
    dtype = "float32" if policy.compute_dtype == "float16" else policy
    return keras.layers.MaxPooling3D(pool_size, name=name, dtype=dtype)(x)


def _head(x, num_classes, fc_units, dropout, *, policy):
    """Dense 128 ReLU -> dropout 0.2 -> dense softmax, the same in the three models (§2)."""
    x = Dense(fc_units, activation="relu", name="fc")(x)
    return classifier(x, num_classes, policy=policy, dropout=dropout)


@register_model(
    "shallow_conv3d_mhsa",
    input_shape=SHALLOW_INPUT_SHAPE,
    modality="clip",
    num_classes=5,
    paper=PAPER,
    # Table 1 says 28M; the layers of §2 give 2.09M under any consistent reading
    # (docs/architectures.md), so the count is not asserted.
    paper_params=28_000_000,
    paper_params_config={"num_classes": 5},
    params_rtol=None,
    test_input_shape=(13, 30, 30, 3),
    class_names=SHALLOW_CLASSES,
    description="3×3-grid block-wise Conv3D + 4-head self-attention on 13 frames (2.1M params)",
    # §3 "Evaluation": "augmented with horizontal flip, change in brightness and salt and pepper noise"
    augment=SHALLOW_AUGMENT,
    sampler="apex_middle",  # §2: onset, 5 frames, apex, 5 frames, offset: the apex is always frame 6
    recipe="shallow",
)
def shallow_conv3d_mhsa(*, num_classes, input_shape, grid=3, filters=8, kernel_size=5, padding="valid",
                        num_heads=4, attention_dim=64, fc_units=128, dropout=0.2):
    """Build the block-wise 3D convolution and attention model (Fig. 1a).

    Every frame is cut into a ``grid × grid`` mosaic; each block's 13-frame
    stack goes through the same Conv3D (8 filters 5×5×5, ReLU) and a 2×2×2 max
    pool and is flattened into one token.  The nine tokens get a learned
    positional embedding, pass a 4-head self-attention and are averaged.

    Args:
        num_classes: number of classes.
        input_shape: (T, H, W, C); the paper uses (13, 90, 90, C) with C = 1 or 3.
            H and W must be divisible by ``grid``.
        grid: blocks per side (3 gives nine 30×30 blocks on 90×90 frames).
        filters, kernel_size, padding: the block Conv3D's.
        num_heads: attention heads (4).
        attention_dim: total query/key/value size over all heads (the paper's
            "parameter size of 64"), so each head has ``attention_dim / num_heads``.
        fc_units: width of the dense ReLU layer (128).
        dropout: dropout before the softmax layer (0.2).

    Returns:
        A ``keras.Model`` named ``"shallow_conv3d_mhsa"``.

    Raises:
        ValueError: ``input_shape`` not (T, H, W, 1 or 3), H or W not divisible by
            ``grid``, blocks smaller than the kernel, or a bad attention size.

    Example:
        >>> model = kerasmer.build_model("shallow_conv3d_mhsa", input_shape=(13, 90, 90, 1))  # doctest: +SKIP
    """
    name = "shallow_conv3d_mhsa"
    t, h, w, _ = _check_clip(name, input_shape)
    if h % grid or w % grid:
        raise ValueError(f"{name}: input_shape height and width {(h, w)} must be divisible by grid={grid}")
    if padding == "valid" and min(t, h // grid, w // grid) < kernel_size:
        raise ValueError(f"{name}: input_shape {tuple(input_shape)} gives blocks of {(t, h // grid, w // grid)}, "
                         f"smaller than kernel_size={kernel_size} with padding='valid'")
    key_dim = _attention_key_dim(name, num_heads, attention_dim)
    policy = current_policy()
    inputs = keras.Input(shape=input_shape, name="clip")
    x = GridSplit(grid, name="grid_split")(inputs)  # (B·grid², T, h, w, C), temporal axis first
    x = conv3d(x, filters, kernel_size, policy=policy, padding=padding, activation="relu", name="block_conv")
    x = _max_pool3d(x, 2, name="block_pool", policy=policy)
    x = BlocksToTokens(grid * grid, name="block_tokens")(x)
    x = PositionalEmbedding(name="pos_embed")(x)
    x = MultiHeadSelfAttention(num_heads, key_dim, name="mhsa")(x)
    x = keras.layers.GlobalAveragePooling1D(name="token_pool")(x)
    return keras.Model(inputs, _head(x, num_classes, fc_units, dropout, policy=policy), name=name)


@register_model(
    "shallow_conv2d_mhsa",
    input_shape=SHALLOW_INPUT_SHAPE,
    modality="clip",
    num_classes=5,
    paper=PAPER,
    # Table 1 says 55M; the layers of §2 give 6.2M (docs/architectures.md).
    paper_params=55_000_000,
    paper_params_config={"num_classes": 5},
    params_rtol=None,
    test_input_shape=(13, 30, 30, 3),
    class_names=SHALLOW_CLASSES,
    description="Per-frame Conv2D + 4-head self-attention, apex-frame token (6.2M params)",
    augment=SHALLOW_AUGMENT,  # §3: flip, brightness, salt-and-pepper noise
    sampler="apex_middle",  # §2: onset, 5, apex, 5, offset (13 frames); the apex is always frame T // 2
    recipe="shallow",
)
def shallow_conv2d_mhsa(*, num_classes, input_shape, apex_index=None, filters=8, kernel_size=3,
                        padding="valid", num_heads=4, attention_dim=64, fc_units=128, dropout=0.2):
    """Build the frame-wise 2D convolution and attention model (Fig. 1b).

    Each frame goes through the same Conv2D (8 filters 3×3, ReLU) and a 2×2 max
    pool and is flattened into one token; the 13 tokens get a learned
    positional embedding and pass a 4-head self-attention; the apex frame's
    output token feeds the classifier.

    Args:
        num_classes: number of classes.
        input_shape: (T, H, W, C); the paper uses (13, 90, 90, C) with C = 1 or 3.
        apex_index: frame index of the apex; None means the middle frame
            (T // 2 = 6 for the paper's onset/5/apex/5/offset sampling).
            Negative values count from the end.
        filters, kernel_size, padding: the per-frame Conv2D's.
        num_heads, attention_dim, fc_units, dropout: as for ``shallow_conv3d_mhsa``.

    Returns:
        A ``keras.Model`` named ``"shallow_conv2d_mhsa"``.

    Raises:
        ValueError: ``input_shape`` not (T, H, W, 1 or 3), ``apex_index`` outside
            the clip, or a bad attention size.

    Example:
        >>> model = kerasmer.build_model("shallow_conv2d_mhsa", apex_index=6)  # doctest: +SKIP
    """
    name = "shallow_conv2d_mhsa"
    t, _, _, _ = _check_clip(name, input_shape)
    apex = t // 2 if apex_index is None else int(apex_index)
    if not -t <= apex < t:
        raise ValueError(f"{name}: apex_index={apex_index} is outside a clip of T={t} frames")
    key_dim = _attention_key_dim(name, num_heads, attention_dim)
    policy = current_policy()
    inputs = keras.Input(shape=input_shape, name="clip")
    x = keras.layers.TimeDistributed(
        Conv2D(filters, kernel_size, padding=padding, activation="relu", name="conv"),
        name="frame_conv")(inputs)
    x = keras.layers.TimeDistributed(keras.layers.MaxPooling2D(2, name="pool"), name="frame_pool")(x)
    x = keras.layers.Reshape((t, -1), name="frame_tokens")(x)
    x = PositionalEmbedding(name="pos_embed")(x)
    x = MultiHeadSelfAttention(num_heads, key_dim, name="mhsa")(x)
    x = TokenSelect(apex, name="apex_token")(x)
    return keras.Model(inputs, _head(x, num_classes, fc_units, dropout, policy=policy), name=name)


@register_model(
    "shallow_convlstm_mhsa",
    input_shape=SHALLOW_INPUT_SHAPE,
    modality="clip",
    num_classes=5,
    paper=PAPER,
    # Table 1: 6M.  Ours: 6.00M with attention_dim=64 split over the 4 heads.
    paper_params=6_000_000,
    paper_params_config={"num_classes": 5},
    params_rtol=0.15,
    test_input_shape=(13, 30, 30, 3),
    class_names=SHALLOW_CLASSES,
    description="ConvLSTM2D + 4-head self-attention, offset-frame token (6.0M params)",
    augment=SHALLOW_AUGMENT,  # §3: flip, brightness, salt-and-pepper noise
    sampler="apex_middle",  # §2: onset, 5, apex, 5, offset (13 frames); the apex is always frame T // 2
    recipe="shallow",
)
def shallow_convlstm_mhsa(*, num_classes, input_shape, filters=32, kernel_size=3, reduce_filters=8,
                          padding="valid", num_heads=4, attention_dim=64, fc_units=128, dropout=0.2):
    """Build the 2D ConvLSTM and attention model (Fig. 1c), the paper's best.

    A ConvLSTM2D (32 filters 3×3, one output per frame) is followed by a 2×2 max
    pool and a 1×1 Conv2D with 8 filters (ReLU); each frame is flattened into a
    token.  The tokens pass a 4-head self-attention without positional
    embedding (the ConvLSTM already orders them), and the last (offset)
    frame's token, which has seen the whole clip, feeds the classifier.

    Args:
        num_classes: number of classes.
        input_shape: (T, H, W, C); the paper uses (13, 90, 90, C) with C = 1 or 3.
        filters, kernel_size, padding: the ConvLSTM2D's.
        reduce_filters: filters of the 1×1 reduction conv (8).
        num_heads, attention_dim, fc_units, dropout: as for ``shallow_conv3d_mhsa``.

    Returns:
        A ``keras.Model`` named ``"shallow_convlstm_mhsa"``.

    Raises:
        ValueError: ``input_shape`` not (T, H, W, 1 or 3) or a bad attention size.

    Example:
        >>> model = kerasmer.build_model("shallow_convlstm_mhsa", input_shape=(13, 90, 90, 1))  # doctest: +SKIP
    """
    name = "shallow_convlstm_mhsa"
    t, _, _, _ = _check_clip(name, input_shape)
    key_dim = _attention_key_dim(name, num_heads, attention_dim)
    policy = current_policy()
    inputs = keras.Input(shape=input_shape, name="clip")
    x = keras.layers.ConvLSTM2D(filters, kernel_size, padding=padding, return_sequences=True, name="convlstm")(inputs)
    x = keras.layers.TimeDistributed(keras.layers.MaxPooling2D(2, name="pool"), name="frame_pool")(x)
    x = keras.layers.TimeDistributed(
        Conv2D(reduce_filters, 1, activation="relu", name="conv"), name="reduce_conv")(x)
    x = keras.layers.Reshape((t, -1), name="frame_tokens")(x)
    x = MultiHeadSelfAttention(num_heads, key_dim, name="mhsa")(x)
    x = TokenSelect(-1, name="offset_token")(x)
    return keras.Model(inputs, _head(x, num_classes, fc_units, dropout, policy=policy), name=name)
