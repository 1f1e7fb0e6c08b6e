"""Pieces shared by every model family."""

from __future__ import annotations

import keras

from kerasmer.core.precision import as_policy


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
    return keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_regularizer=kernel_regularizer,
        dtype="float32",  # softmax and the loss stay float32 under mixed precision
        name=name,
    )(x)
