"""Token layers for the attention models: grid split, token folding, positional
embedding and token selection.

The shallow attention models of Upadhy & Verlekar turn a clip into a
short sequence of tokens (one per 3×3 grid block, or one per frame) before a
multi-head self-attention layer.  These layers do the reshaping with
``keras.ops`` only, so they run on every Keras backend and serialise in
``safe_mode`` (a ``Lambda`` would not).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasmer.layers.biased import Dense


@keras.saving.register_keras_serializable(package="kerasmer")
class GridSplit(keras.layers.Layer):
    """Split every frame of a clip into a ``grid × grid`` mosaic of blocks.

    The blocks are moved to the batch axis so that one shared layer (e.g. a
    Conv3D) processes each block as if it were its own clip.  Blocks are in
    row-major order: block ``r * grid + c`` is row ``r``, column ``c``.

    Args:
        grid: number of blocks along each of height and width (3 gives nine blocks).

    Input shape:
        (batch, T, H, W, C), with H and W divisible by ``grid``.

    Output shape:
        (batch · grid², T, H / grid, W / grid, C).

    Example:
        >>> blocks = GridSplit(3)(keras.ops.zeros((2, 13, 90, 90, 1)))  # doctest: +SKIP
        >>> blocks.shape                                                  # doctest: +SKIP
        (18, 13, 30, 30, 1)

    Reference: Upadhy & Verlekar, "Shallow convolution and attention-based
    models for micro-expression recognition", §2 (nine 30×30×13 blocks).
    """

    def __init__(self, grid: int = 3, **kwargs):
        super().__init__(**kwargs)
        if int(grid) < 1:
            raise ValueError(f"GridSplit: grid must be a positive integer, got {grid!r}")
        self.grid = int(grid)

    def _check(self, input_shape):
        if len(input_shape) != 5:
            raise ValueError(f"GridSplit expects a 5-D clip (batch, T, H, W, C), got shape {tuple(input_shape)}")
        _, t, h, w, c = input_shape
        if None in (t, h, w, c):
            raise ValueError(f"GridSplit needs static T, H, W, C, got shape {tuple(input_shape)}")
        if h % self.grid or w % self.grid:
            raise ValueError(f"GridSplit: input height and width ({h}, {w}) must be divisible by grid={self.grid}")

    def build(self, input_shape):
        self._check(input_shape)
        super().build(input_shape)

    def call(self, x):
        _, t, h, w, c = x.shape
        g = self.grid
        x = ops.reshape(x, (-1, t, g, h // g, g, w // g, c))
        # (B, T, row, h, col, w, C) -> (B, row, col, T, h, w, C): blocks next to the batch axis.
        x = ops.transpose(x, (0, 2, 4, 1, 3, 5, 6))
        return ops.reshape(x, (-1, t, h // g, w // g, c))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        b, t, h, w, c = input_shape
        g = self.grid
        return (None if b is None else b * g * g, t, h // g, w // g, c)

    def get_config(self):
        config = super().get_config()
        config.update({"grid": self.grid})
        return config


@keras.saving.register_keras_serializable(package="kerasmer")
class BlocksToTokens(keras.layers.Layer):
    """Undo :class:`GridSplit`'s batch folding: one flattened token per block.

    Args:
        num_tokens: blocks per sample that were folded into the batch axis
            (``grid ** 2``).

    Input shape:
        (batch · num_tokens, d1, d2, ...).

    Output shape:
        (batch, num_tokens, d1 · d2 · ...).

    Example:
        >>> tokens = BlocksToTokens(9)(keras.ops.zeros((18, 4, 13, 13, 8)))  # doctest: +SKIP
        >>> tokens.shape                                                       # doctest: +SKIP
        (2, 9, 5408)
    """

    def __init__(self, num_tokens: int, **kwargs):
        super().__init__(**kwargs)
        if int(num_tokens) < 1:
            raise ValueError(f"BlocksToTokens: num_tokens must be a positive integer, got {num_tokens!r}")
        self.num_tokens = int(num_tokens)

    def _features(self, input_shape):
        dims = tuple(input_shape[1:])
        if None in dims:
            raise ValueError(f"BlocksToTokens needs static non-batch dimensions, got shape {tuple(input_shape)}")
        return math.prod(dims)

    def call(self, x):
        return ops.reshape(x, (-1, self.num_tokens, self._features(x.shape)))

    def compute_output_shape(self, input_shape):
        b = input_shape[0]
        return (None if b is None else b // self.num_tokens, self.num_tokens, self._features(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update({"num_tokens": self.num_tokens})
        return config


@keras.saving.register_keras_serializable(package="kerasmer")
class PositionalEmbedding(keras.layers.Layer):
    """Add a learned positional embedding, one vector per token position.

    Args:
        initializer: initializer of the (num_tokens, features) embedding table;
            ViT-style truncated normal with standard deviation 0.02 by default.

    Input shape:
        (batch, num_tokens, features), both static.

    Output shape:
        The same.

    Example:
        >>> y = PositionalEmbedding()(keras.ops.zeros((2, 13, 64)))  # doctest: +SKIP
    """

    def __init__(self, initializer="truncated_normal_0.02", **kwargs):
        super().__init__(**kwargs)
        if initializer == "truncated_normal_0.02":
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or None in tuple(input_shape[1:]):
            raise ValueError("PositionalEmbedding expects (batch, num_tokens, features) with static "
                             f"num_tokens and features, got shape {tuple(input_shape)}")
        self.embeddings = self.add_weight(
            shape=tuple(input_shape[1:]), initializer=self.initializer, name="embeddings", trainable=True)
        super().build(input_shape)

    def call(self, x):
        return x + ops.cast(self.embeddings, x.dtype)[None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"initializer": keras.initializers.serialize(self.initializer)})
        return config


@keras.saving.register_keras_serializable(package="kerasmer")
class TokenSelect(keras.layers.Layer):
    """Pick one token of a sequence, e.g. the apex frame's or the last one.

    Args:
        index: token position; negative values count from the end (-1 is the
            last token), as in Python.

    Input shape:
        (batch, num_tokens, features).

    Output shape:
        (batch, features).

    Raises:
        ValueError: ``index`` outside ``[-num_tokens, num_tokens)``.

    Example:
        >>> apex = TokenSelect(6)(keras.ops.zeros((2, 13, 64)))  # doctest: +SKIP
        >>> apex.shape                                           # doctest: +SKIP
        (2, 64)
    """

    def __init__(self, index: int, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def _position(self, num_tokens):
        if num_tokens is not None and not -num_tokens <= self.index < num_tokens:
            raise ValueError(f"TokenSelect: index={self.index} is out of range for {num_tokens} tokens")
        return self.index % num_tokens if num_tokens is not None else self.index

    def call(self, x):
        # A non-negative static index keeps the slice a plain strided slice on every backend.
        return ops.take(x, self._position(x.shape[1]), axis=1)

    def compute_output_shape(self, input_shape):
        self._position(input_shape[1])
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"index": self.index})
        return config


@keras.saving.register_keras_serializable(package="kerasmer")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product multi-head self-attention, softmax(q kᵀ / √d) v, per head.

    Like ``keras.layers.MultiHeadAttention`` used as self-attention, except
    that the key projection has no bias: a key bias adds the same term
    q·b_k to every score of a query, which the softmax cancels, so that weight
    would never receive a gradient.  The softmax runs in float32 under mixed
    precision.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head's query, key and value.

    Input shape:
        (batch, num_tokens, features).

    Output shape:
        The same: the heads are concatenated and projected back to ``features``.

    Example:
        >>> y = MultiHeadSelfAttention(4, 16)(keras.ops.zeros((2, 13, 256)))  # doctest: +SKIP

    Reference: Vaswani et al., "Attention is all you need", NeurIPS 2017; used
    with 4 heads by Upadhy & Verlekar, §2.
    """

    def __init__(self, num_heads: int, key_dim: int, **kwargs):
        super().__init__(**kwargs)
        if int(num_heads) < 1 or int(key_dim) < 1:
            raise ValueError(f"MultiHeadSelfAttention: num_heads and key_dim must be positive, "
                             f"got {num_heads!r}, {key_dim!r}")
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        inner = self.num_heads * self.key_dim
        policy = self.dtype_policy  # the projections compute in this layer's (mixed) precision
        self.query_dense = Dense(inner, name="query", dtype=policy)
        self.key_dense = Dense(inner, use_bias=False, name="key", dtype=policy)
        self.value_dense = Dense(inner, name="value", dtype=policy)
        self.output_dense = None  # its width is the input's, known in build()

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError("MultiHeadSelfAttention expects (batch, num_tokens, features) with static "
                             f"features, got shape {tuple(input_shape)}")
        for dense in (self.query_dense, self.key_dense, self.value_dense):
            dense.build(input_shape)
        self.output_dense = Dense(input_shape[-1], name="output", dtype=self.dtype_policy)
        self.output_dense.build(tuple(input_shape[:-1]) + (self.num_heads * self.key_dim,))
        super().build(input_shape)

    def _heads(self, x):
        # (B, N, h·d) -> (B, h, N, d)
        x = ops.reshape(x, (-1, x.shape[1], self.num_heads, self.key_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, x):
        q = self._heads(self.query_dense(x))
        k = self._heads(self.key_dense(x))
        v = self._heads(self.value_dense(x))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.key_dim)
        weights = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), v.dtype)
        out = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))  # (B, N, h, d)
        out = ops.reshape(out, (-1, x.shape[1], self.num_heads * self.key_dim))
        return self.output_dense(out)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "key_dim": self.key_dim})
        return config
