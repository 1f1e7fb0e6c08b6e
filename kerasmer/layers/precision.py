"""Per-layer dtype guard for a oneDNN bfloat16 kernel bug.

oneDNN's bfloat16 ``Conv3DBackpropFilter`` (the Conv3D weight gradient) returns
wrong, sometimes NaN or ~1e36, values when the input's temporal depth is
smaller than the kernel's depth (measured with TF 2.21 / oneDNN 3.7.3: relative
error 0.4 to NaN at T=2 with 3-deep kernels, T=2..4 with 5-deep kernels, at any
spatial size and channel count tried).  The forward conv and the input gradient
are correct; so is float32.  Model builders create every Conv3D through
:func:`conv3d`, which gives such a layer a float32 dtype policy when the global
policy computes in bfloat16.  The choice is made from static shapes when the
model is built, so it costs nothing at run time beyond the float32 conv itself.

The rule (input depth < kernel depth) is deliberately wider than the faulty
region measured (T=1 and strided convs were correct): it is simple, and shapes
nobody measured stay safe.  ``tests/layers/test_bf16_guard.py`` re-measures the
bug on every run and fails if it appears outside the rule;
``docs/benchmarks.md`` has the numbers.  Set ``KERASMER_DISABLE_BF16_GUARD=1``
to build models without the guard (a debugging aid: to reproduce the bug or to
check whether a newer TensorFlow still needs the guard).
"""

from __future__ import annotations

import os

import keras

# Debugging aid: set KERASMER_DISABLE_BF16_GUARD=1 to build models without the
# guard (to reproduce the bug, or to check whether a new TensorFlow still needs
# it).  Read at build time, so it can be toggled between model builds.
DISABLE_ENV = "KERASMER_DISABLE_BF16_GUARD"


def guard_enabled() -> bool:
    """Whether the guard is active (False when ``KERASMER_DISABLE_BF16_GUARD`` is set to 1/true/yes)."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("1", "true", "yes")


def _as_tuple(value, n: int) -> tuple:
    if isinstance(value, int):
        return (value,) * n
    return tuple(value)


def needs_float32_conv3d(input_depth: int | None, kernel_depth: int) -> bool:
    """Whether a Conv3D must compute in float32 under the current global policy.

    Args:
        input_depth: the temporal (first spatial) size of the input, or None if unknown.
        kernel_depth: the kernel's temporal size.

    Returns:
        True when the global dtype policy computes in bfloat16 and the input depth
        is smaller than the kernel depth (or unknown, to be safe).
    """
    policy = keras.config.dtype_policy()
    if not guard_enabled():
        return False
    if policy.compute_dtype != "bfloat16":
        return False
    return input_depth is None or int(input_depth) < int(kernel_depth)


def conv3d(x, filters, kernel_size, *, strides=1, padding="same", name=None, **kwargs):
    """Apply a ``keras.layers.Conv3D`` to ``x``, guarded against the bf16 bug.

    Args:
        x: a channels-last 5-D tensor (batch, T, H, W, C).
        filters, kernel_size, strides, padding: as for ``keras.layers.Conv3D``.
        name: layer name.
        **kwargs: passed to ``keras.layers.Conv3D``.

    Returns:
        The layer's output tensor.  Under ``mixed_bfloat16`` the layer computes
        in float32 if ``x``'s temporal depth is smaller than the kernel depth.

    Example:
        >>> y = conv3d(x, 64, 3, name="stage4_block1_conv1")  # doctest: +SKIP
    """
    kernel = _as_tuple(kernel_size, 3)
    if needs_float32_conv3d(x.shape[1], kernel[0]) and "dtype" not in kwargs:
        kwargs["dtype"] = "float32"
    layer = keras.layers.Conv3D(filters, kernel, strides=strides, padding=padding, name=name, **kwargs)
    return layer(x)
