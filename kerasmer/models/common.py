"""Pieces shared by every model family."""

from __future__ import annotations

import keras

from kerasmer.core.precision import as_policy
from kerasmer.layers.biased import Dense
from kerasmer.layers.padding import UnfusedZeroPadding3D


def classifier(x, num_classes: int, *, policy, dropout: float = 0.0, kernel_regularizer=None,
               name: str = "predictions"):
    """Dropout + dense softmax head whose output is float32 under mixed precision.

    Args:
        x: a 2-D feature tensor (batch, features).
        num_classes: number of output classes.
        policy: the model's dtype policy (a ``keras.DTypePolicy`` or a name),
            read once by the model builder; the dropout runs under it, the
            dense softmax layer always in float32.
        dropout: dropout rate before the dense layer (0 disables it).
        kernel_regularizer: optional regularizer for the dense kernel.
        name: name of the dense layer (the dropout is ``f"{name}_dropout"``).

    Returns:
        The (batch, num_classes) probabilities tensor, always float32.
    """
    policy = as_policy(policy)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout", dtype=policy)(x)
    return Dense(
        num_classes,
        activation="softmax",
        kernel_regularizer=kernel_regularizer,
        dtype="float32",  # softmax and the loss stay float32 under mixed precision
        name=name,
    )(x)


def symmetric_pad3d(x, kernel, *, policy, name: str):
    """Pad ``x`` by ``kernel // 2`` zeros on both sides of T, H and W, for a strided 'valid' Conv3D.

    PyTorch-style symmetric padding (``Conv3d(padding=k // 2)``), which Keras'
    ``"same"`` does not give a strided conv on an even-sized input: "same" pads
    ``(k - s) // 2`` before and the rest after, so the stride-2 windows are
    centred on the odd voxels instead of the even ones (and no longer line up
    with a 1×1×1 stride-2 shortcut).  The layer is
    :class:`~kerasmer.layers.padding.UnfusedZeroPadding3D`, a
    ``ZeroPadding3D`` whose op Grappler's broken ``Pad + Conv3D`` training
    rewrite does not match (TF 2.21 otherwise logs "remapper failed" and drops
    every fusion of the step).

    Args:
        x: a channels-last 5-D tensor (batch, T, H, W, C).
        kernel: the conv's kernel size, an int or a (t, h, w) tuple.
        policy: the model's dtype policy (a ``keras.DTypePolicy`` or a name).
        name: the padding layer's name (kerasmer uses ``f"{conv}_pad"``; no
            weights, so weight transfer by layer name is unaffected).

    Returns:
        ``x`` padded to (batch, T + 2·(kt // 2), H + 2·(kh // 2), W + 2·(kw // 2), C).

    Example:
        >>> y = symmetric_pad3d(x, (3, 7, 7), policy=policy, name="stem_pad")   # doctest: +SKIP
    """
    kernel = (kernel,) * 3 if isinstance(kernel, int) else tuple(kernel)
    return UnfusedZeroPadding3D(tuple(k // 2 for k in kernel), dtype=as_policy(policy), name=name)(x)
