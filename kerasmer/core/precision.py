"""Precision in one place: choosing the dtype policy, scoping it, recording it, and the bf16 Conv3D guard.

**Choosing.** ``precision="auto"`` picks the fastest policy this machine
computes correctly:

* ``mixed_float16`` when TensorFlow sees a GPU (tensor cores; Keras' loss
  scaling keeps float16 gradients in range);
* ``mixed_bfloat16`` on a CPU with native bfloat16 arithmetic (x86 AVX-512 BF16
  or AMX-BF16), about 1.7x faster than float32 for 3D CNN training there.
  Conv3D layers that would hit oneDNN's bf16 weight-gradient bug take that
  gradient on their explicitly padded input (the guard below);
* ``float32`` otherwise: on a CPU without bf16 units, bf16 is emulated and slower.

**Inference chooses differently** (``purpose="inference"``, used by
:func:`kerasmer.inference.load_served_model`): on a CPU without a GPU,
``"auto"`` picks ``float32`` even where the CPU has native bfloat16: it is exact,
and bf16 has not been shown to win for every model at batch 1 (per-frame video).
Measured with TF 2.21 / oneDNN 3.7.3 on 2 cores with AVX-512 BF16 (issue 16):
before the export work LARNet at batch 1 took 219 ms in float32 and 239 ms in
mixed_bfloat16 (every conv weight cast per call, ~1,350 Cast ops, and unfused
batch norms).  With the batch norms folded (:func:`kerasmer.models.fold_batch_norms`)
and the weights stored in bf16 (:func:`bfloat16_serving_model`) bf16 became faster
at every batch size: 155 ms against 195 ms at batch 1, 123 against 197 at batch 4
(quiet, interleaved; docs/benchmarks.md), and 112 ms at batch 1 with
``TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1`` (:func:`frozen_weights_assumed`).  The other
models were not measured at inference, and the small ones, where casts weigh more
than the convolutions, gained least from bf16 in training (quiet, 2026-11-30: 1.06x
for the shallow Conv2D network, 1.18x for emoresnet, 1.46-1.67x for LARNet and the
3D ResNets), so big models should ask for ``"bf16"`` explicitly.  Training keeps bf16 (``"auto"``
with the default ``purpose="training"``).  On a GPU both pick
``mixed_float16``.  A model trained in mixed precision loses nothing served in
float32: its variables are float32 already (:func:`float32_model`); served in
bf16, :func:`bfloat16_serving_model` stores its conv weights in bf16 once.

:func:`validate_precision` checks and normalises a setting without touching
TensorFlow (a config can be validated before anything is written);
:func:`resolve_precision` also resolves ``"auto"`` for a purpose (training or
inference); :func:`precision_scope`
sets the resolved policy as Keras' global policy for a ``with`` block and puts
the previous one back afterwards.

**Recording.** :func:`precision_environment` returns what a run config should
record so a result can be traced to the precision and the TensorFlow / Keras /
oneDNN versions that produced it.

**The bf16 Conv3D guard.** oneDNN's bfloat16 ``Conv3DBackpropFilter`` (the
Conv3D weight gradient) returns wrong, sometimes NaN or ~1e36, values when the
input's temporal depth is smaller than the kernel's depth (measured with TF 2.21
/ oneDNN 3.7.3: relative error 0.4 to NaN at T=2 with 3-deep kernels, T=2..4
with 5-deep kernels, at any spatial size and channel count tried).  The forward
conv and the input gradient are correct; so is float32.  The bug lies in the
kernel's handling of the 'same' padding: the same conv with its input padded
with zeros explicitly and run 'valid' (input depth then at least the kernel's)
gives correct bf16 weight gradients at every shape measured, the issue's
included.  Model builders create every Conv3D through
:func:`kerasmer.layers.conv3d`, which does exactly that for a layer where
:func:`needs_conv3d_guard` holds, so the layer keeps bfloat16 (until
issue 16 such layers computed in float32, about 5% of a resnet3d18 bf16 step);
a layer whose input shape is not static enough to pad by computes in float32.
The choice is made from static shapes when the model is built.

The rule (input depth < kernel depth) is deliberately wider than the faulty
region measured (T=1 and strided convs were correct): it is simple, and shapes
nobody measured stay safe.  ``tests/layers/test_bf16_guard.py`` re-measures the
bug on every run and fails if it appears outside the rule or if the explicitly
padded conv shows it; ``docs/benchmarks.md`` has the numbers.  Set
``KERASMER_DISABLE_BF16_GUARD=1`` to build models without the guard (a
debugging aid: to reproduce the bug or to check whether a newer TensorFlow
still needs the guard).

**Who reads the global policy.** Only the top: a model builder reads it once
(:func:`current_policy`) and passes it down explicitly; :func:`needs_conv3d_guard`,
:func:`kerasmer.layers.conv3d` and the other layer helpers take it as an argument.
:func:`precision_environment` records the policy in effect.

This module is part of :mod:`kerasmer.core`: it imports only the standard
library, Keras and TensorFlow.

Example:
    >>> from kerasmer.core.precision import precision_scope, precision_environment
    >>> with precision_scope("auto") as policy:      # doctest: +SKIP
    ...     model = kerasmer.build_model("meranet18")
    >>> policy                                        # doctest: +SKIP
    'mixed_bfloat16'
    >>> precision_environment()["onednn_version"]     # doctest: +SKIP
    '3.7.3'
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import re
import subprocess
import sys
from typing import Iterator

import keras

logger = logging.getLogger(__name__)

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# Short names people type; they resolve to the Keras policy names above.
ALIASES = {"fp32": "float32", "fp16": "mixed_float16", "bf16": "mixed_bfloat16"}
# Every setting validate_precision accepts (case-insensitive, surrounding blanks ignored).
CHOICES = ("auto", *POLICIES, *ALIASES)
# x86 /proc/cpuinfo flags meaning the CPU computes bfloat16 natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# Debugging aid: set KERASMER_DISABLE_BF16_GUARD=1 to build models without the
# guard (to reproduce the bug, or to check whether a new TensorFlow still needs
# it).  Read at build time, so it can be toggled between model builds.
DISABLE_ENV = "KERASMER_DISABLE_BF16_GUARD"
FROZEN_WEIGHTS_ENV = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"  # TensorFlow's own switch, read once per process
# What a policy is resolved for: "auto" may choose differently for each (see the module docstring).
PURPOSES = ("training", "inference")


# ------------------------------------------------------------------ choosing


def _gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def cpu_supports_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX-BF16).

    Args:
        cpuinfo: text of ``/proc/cpuinfo``; read from the system when None.  Only
            Linux exposes the flags there; elsewhere the answer is False, which
            keeps training in float32 (correct, possibly slower).

    Returns:
        True if any ``flags`` line names ``avx512_bf16`` or ``amx_bf16``.

    Example:
        >>> cpu_supports_bf16("flags : fpu avx512f avx512_bf16")
        True
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and any(flag in value.split() for flag in BF16_CPU_FLAGS):
            return True
    return False


def validate_precision(precision: str) -> str:
    """Check and normalise a precision setting, without resolving ``"auto"``.

    Touches neither TensorFlow nor the global policy, so a run config can be
    validated before anything is built or written.

    Args:
        precision: ``"auto"``, one of :data:`POLICIES`, or an alias in
            :data:`ALIASES` (``"fp32"``, ``"fp16"``, ``"bf16"``);
            case-insensitive, surrounding blanks ignored.

    Returns:
        ``"auto"`` or a Keras policy name from :data:`POLICIES`.

    Raises:
        ValueError: not a string, an unknown name (the message names the value
            and the choices), or a pure half-precision policy
            (``"float16"``/``"bfloat16"``), which would keep weights in half
            precision and is not supported for training.

    Example:
        >>> validate_precision(" BF16 ")
        'mixed_bfloat16'
        >>> validate_precision("auto")
        'auto'
    """
    if not isinstance(precision, str):
        raise ValueError(f"precision must be a string, got {precision!r}; choices: {', '.join(CHOICES)}")
    name = ALIASES.get(precision.strip().lower(), precision.strip().lower())
    if name in ("float16", "bfloat16"):
        raise ValueError(
            f"precision={precision!r}: pure {name} keeps the weights in {name} and is not supported "
            f"for training; use 'mixed_{name}' (or 'auto')"
        )
    if name != "auto" and name not in POLICIES:
        raise ValueError(
            f"Unknown precision {precision!r}; expected 'auto', one of {', '.join(POLICIES)} "
            f"or an alias ({', '.join(f'{k}={v}' for k, v in ALIASES.items())})"
        )
    return name


def _auto_policy(purpose: str, gpu_available: bool | None, cpu_bf16: bool | None) -> tuple[str, str]:
    """``"auto"``'s choice for ``purpose`` and the reason, for :func:`resolve_precision`."""
    gpu = _gpu_available() if gpu_available is None else bool(gpu_available)
    if gpu:
        return "mixed_float16", "a GPU is visible"
    bf16 = cpu_supports_bf16() if cpu_bf16 is None else bool(cpu_bf16)
    if not bf16:
        return "float32", "no GPU and no native bfloat16 on this CPU"
    if purpose == "inference":
        # Exact, and bf16's gain at batch 1 is measured only for LARNet (0.79x); see the module docstring.
        return "float32", "inference on a CPU: float32 is exact; ask for bf16 for big models (docs/benchmarks.md)"
    return "mixed_bfloat16", "no GPU; the CPU has native bfloat16 (AVX512_BF16/AMX)"


def resolve_precision(precision: str, *, purpose: str = "training", gpu_available: bool | None = None,
                      cpu_bf16: bool | None = None) -> str:
    """Turn a precision setting into a Keras dtype policy name.

    Args:
        precision: as for :func:`validate_precision`.
        purpose: ``"training"`` (the default) or ``"inference"``; only
            ``"auto"`` depends on it: for inference on a CPU without a GPU it
            picks ``float32`` even where the CPU has native bfloat16 (module
            docstring: float32 is exact, and bf16's gain at batch 1 is measured for LARNet only).
        gpu_available: override GPU detection (for tests); detected when None.
        cpu_bf16: override CPU bf16 detection (for tests); detected when None.

    Returns:
        ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.  The choice
        (and for ``"auto"``, the reason) is logged at INFO level.

    Raises:
        ValueError: as :func:`validate_precision`, or an unknown ``purpose``.

    Example:
        >>> resolve_precision("auto", gpu_available=False, cpu_bf16=True)
        'mixed_bfloat16'
        >>> resolve_precision("auto", purpose="inference", gpu_available=False, cpu_bf16=True)
        'float32'
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    name = validate_precision(precision)
    if name == "auto":
        resolved, why = _auto_policy(purpose, gpu_available, cpu_bf16)
        logger.info("precision='auto' for %s -> %s (%s)", purpose, resolved, why)
        return resolved
    if name == "mixed_float16" and gpu_available is False:
        # Explicit requests are honoured, but float16 on a CPU is emulated and slow.
        logger.warning("precision='mixed_float16' without a GPU: float16 is emulated on CPU and slow")
    logger.info("precision=%r -> %s", precision, name)
    return name


# ------------------------------------------------------------------ the global policy


def apply_precision(precision: str) -> str:
    """Resolve ``precision`` and set it as Keras' global dtype policy, for good.

    Prefer :func:`precision_scope`, which puts the previous policy back.

    Args:
        precision: as for :func:`resolve_precision`.

    Returns:
        The resolved policy name now in effect.

    Example:
        >>> apply_precision("float32")
        'float32'
    """
    resolved = resolve_precision(precision)
    keras.config.set_dtype_policy(resolved)
    return resolved


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[str]:
    """Resolve ``precision`` and make it Keras' global dtype policy inside a ``with`` block.

    Build the model inside the block: layers read the policy when they are
    created (and the Conv3D guard decides each layer's dtype then).  The
    previous global policy is restored on exit, also when the block raises.

    Args:
        precision: as for :func:`resolve_precision`.

    Yields:
        The resolved policy name (``"float32"``, ``"mixed_float16"`` or
        ``"mixed_bfloat16"``).

    Raises:
        ValueError: as :func:`validate_precision`, before the policy changes.

    Example:
        >>> with precision_scope("bf16") as policy:
        ...     keras.config.dtype_policy().name == policy == "mixed_bfloat16"
        True
    """
    resolved = resolve_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolved)
    try:
        yield resolved
    finally:
        keras.config.set_dtype_policy(previous)


def current_policy() -> keras.DTypePolicy:
    """Keras' global dtype policy; what a model builder reads once and passes down.

    Example:
        >>> current_policy().name   # doctest: +SKIP
        'float32'
    """
    return keras.config.dtype_policy()


def as_policy(policy) -> keras.DTypePolicy:
    """A ``keras.DTypePolicy`` from a policy or a policy name.

    Args:
        policy: a ``keras.DTypePolicy`` or a name such as ``"mixed_bfloat16"``.
            None is refused: a layer helper must be given its policy, never
            fall back on the global one.

    Raises:
        ValueError: ``policy`` is None or not a dtype policy.
    """
    if policy is None:
        raise ValueError("policy must be a keras.DTypePolicy or a policy name, got None; the model builder "
                         "reads it once (kerasmer.core.precision.current_policy()) and passes it down")
    if isinstance(policy, keras.DTypePolicy):
        return policy
    return keras.dtype_policies.get(policy)


def _half_precision_layers(model: keras.Model) -> list:
    """The layers of ``model`` (nested models included) that compute in bfloat16 or float16."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _half_precision_layers(layer)
        elif layer.dtype_policy.compute_dtype in ("bfloat16", "float16"):
            found.append(layer)
    return found


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` computing in float32 everywhere, with the same weights; ``model`` itself if it already does.

    A model trained under ``mixed_bfloat16`` or ``mixed_float16`` keeps its
    variables in float32, so serving it in float32 changes no weight, only the
    arithmetic (and removes the casts around every float32 layer).  Layers
    computing in half precision are rebuilt from their config with
    ``dtype="float32"``; the weights are copied over.

    Args:
        model: a built functional or sequential ``keras.Model``.

    Returns:
        A ``keras.Model`` with the same name, layer names, inputs, outputs and
        weights, every layer computing in float32.

    Raises:
        ValueError: ``model`` is not a ``keras.Model``.

    Example:
        >>> served = float32_model(keras.saving.load_model("bf16_run/model.keras"))  # doctest: +SKIP
        >>> {layer.compute_dtype for layer in served.layers}                          # doctest: +SKIP
        {'float32'}
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}")
    if not _half_precision_layers(model):
        return model
    return _rebuild(model, lambda layer: "float32")


# Layers whose weights only feed a matmul or a convolution: stored in bfloat16 they give the same
# result as mixed_bfloat16, which casts them to bfloat16 on every call.
_BF16_WEIGHT_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)


def bfloat16_serving_model(model: keras.Model) -> keras.Model:
    """A mixed_bfloat16 ``model`` whose conv and dense weights are stored in bfloat16, for inference only.

    Under ``mixed_bfloat16`` every conv and dense layer casts its float32
    kernel and bias to bfloat16 on every call: LARNet's 88M weights, 351 MB
    read and 175 MB written per forward pass, whatever the batch.  Rebuilt with
    the pure ``"bfloat16"`` policy those layers hold the already-rounded values
    and cast nothing, so the outputs are the same as the mixed model's; every
    other layer (batch norms, the float32 head, float32 Conv3Ds) is kept as it
    is.  Not for training: bfloat16 variables cannot take small updates.

    Args:
        model: a built ``keras.Model``, typically built or trained under ``mixed_bfloat16``.

    Returns:
        The rebuilt model (same name, layer names and graph), or ``model`` itself
        when no conv or dense layer computes in bfloat16.

    Raises:
        ValueError: ``model`` is not a ``keras.Model``.

    Example:
        >>> fast = bfloat16_serving_model(kerasmer.build_model("larnet", precision="bf16"))  # doctest: +SKIP
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}")

    def dtype_for(layer):
        # A layer may also say its weights only scale its input in the compute dtype (the hook
        # ``serve_weights_in_compute_dtype``: kerasmer.layers.ChannelAffine, a folded batch norm).
        weights_cast = isinstance(layer, _BF16_WEIGHT_LAYERS) or getattr(layer, "serve_weights_in_compute_dtype", False)
        return "bfloat16" if weights_cast and layer.dtype_policy.compute_dtype == "bfloat16" else None

    if not any(dtype_for(layer) for layer in model.layers):
        return model
    return _rebuild(model, dtype_for)


def _rebuild(model: keras.Model, dtype_for) -> keras.Model:
    """Clone ``model`` giving each layer the policy ``dtype_for(layer)`` (None: keep its own); copy the weights."""

    def rebuild(layer):
        config = layer.get_config()
        dtype = dtype_for(layer)
        if dtype is not None and "dtype" in config:
            config["dtype"] = dtype
        return layer.__class__.from_config(config)

    # clone_model keeps the graph and the layer names; set_weights casts float32 values to a bf16 variable
    copy = keras.models.clone_model(model, clone_function=rebuild)
    copy.set_weights(model.get_weights())
    return copy


# ------------------------------------------------------------------ recording


@functools.lru_cache(maxsize=1)
def onednn_version(timeout: float = 120.0) -> str | None:
    """The oneDNN version bundled with TensorFlow, e.g. ``"3.7.3"``, or None.

    TensorFlow has no API for it, and oneDNN prints it only with
    ``ONEDNN_VERBOSE=1`` when its first primitive runs, so a short child
    Python process runs one convolution and the banner is parsed.  The result
    is cached for the life of the process (a few seconds, once).

    Args:
        timeout: seconds to wait for the child process.

    Returns:
        The version string, or None if oneDNN is off or the probe failed.

    Example:
        >>> onednn_version()   # doctest: +SKIP
        '3.7.3'
    """
    code = (
        "import tensorflow as tf\n"
        "tf.nn.conv2d(tf.ones((1, 4, 4, 2)), tf.ones((3, 3, 2, 2)), 1, 'SAME')\n"
    )
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"oneDNN v(\d+\.\d+(?:\.\d+)?)", out.stdout + out.stderr)
    return match.group(1) if match else None


def _onednn_enabled() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port

        # True when TF was built with oneDNN and TF_ENABLE_ONEDNN_OPTS does not turn it off.
        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # private API: absence must not break a training run
        return None


def precision_environment(*, probe_onednn: bool = True) -> dict:
    """What a run config should record about precision and the numeric stack.

    Args:
        probe_onednn: find the oneDNN version with :func:`onednn_version` (a
            few seconds once per process); when False it is recorded as None.

    Returns:
        A JSON-serialisable dict: ``precision`` (the global policy in effect,
        e.g. inside :func:`precision_scope`), ``compute_dtype``,
        ``variable_dtype``, ``tensorflow``, ``keras``, ``onednn_enabled``,
        ``onednn_version``, ``tf_enable_onednn_opts`` (the environment
        variable, or None), ``cpu_bf16``, ``gpus`` (count), ``machine`` and
        ``bf16_conv3d_guard`` (whether the guard is active).

    Example:
        >>> env = precision_environment(probe_onednn=False)
        >>> sorted(env)[:3]
        ['bf16_conv3d_guard', 'compute_dtype', 'cpu_bf16']
    """
    import tensorflow as tf

    policy = keras.config.dtype_policy()
    return {
        "precision": policy.name,
        "compute_dtype": policy.compute_dtype,
        "variable_dtype": policy.variable_dtype,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn_enabled": _onednn_enabled(),
        "onednn_version": onednn_version() if probe_onednn else None,
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "cpu_bf16": cpu_supports_bf16(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "machine": platform.machine(),
        "bf16_conv3d_guard": guard_enabled(),
    }


def _env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to 1/true/yes (any case)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def frozen_weights_assumed() -> bool:
    """Whether ``TF_ONEDNN_ASSUME_FROZEN_WEIGHTS`` tells TensorFlow's oneDNN kernels that weights never change.

    With it set to 1, each oneDNN convolution and matmul kernel reorders its weights into oneDNN's blocked
    layout on its first call and keeps that copy, instead of reordering them on every call: in one 155 ms bf16
    batch-1 call of LARNet, 382 such reorders took 67 ms of 220 ms of oneDNN primitive time (``ONEDNN_VERBOSE``;
    the two cores overlap), and with the variable set the call took 112 ms (docs/serving.md, docs/benchmarks.md).
    TensorFlow reads the variable once per process, when it creates the first such kernel.

    It is only right in an inference-only process whose convolutions run in graph mode: a served SavedModel,
    or a Keras model called through a ``tf.function`` (``kerasmer predict``'s ``.keras`` path). A kernel
    never sees new weights, so training is wrong, and eager execution shares one kernel among all convolutions
    with the same attributes, so a second conv would compute with the first one's cached weights (MTCNN's
    networks run eagerly, so the ``mtcnn`` face detector refuses to run with it).

    Returns:
        True when the variable is set to 1/true/yes in this process's environment.

    Example:
        >>> import os; os.environ.pop(FROZEN_WEIGHTS_ENV, None); frozen_weights_assumed()
        False
    """
    return _env_flag(FROZEN_WEIGHTS_ENV)


# ------------------------------------------------------------------ the bf16 Conv3D guard


def guard_enabled() -> bool:
    """Whether the guard is active (False when ``KERASMER_DISABLE_BF16_GUARD`` is set to 1/true/yes)."""
    return not _env_flag(DISABLE_ENV)


def needs_conv3d_guard(input_depth: int | None, kernel_depth: int, policy) -> bool:
    """Whether a 'same' Conv3D under ``policy`` would hit oneDNN's bf16 weight-gradient bug.

    Args:
        input_depth: the temporal (first spatial) size of the input, or None if unknown.
        kernel_depth: the kernel's temporal size.
        policy: the dtype policy the layer would otherwise get (a
            ``keras.DTypePolicy`` or a name such as ``"mixed_bfloat16"``).

    Returns:
        True when the guard is enabled, ``policy`` computes in bfloat16 and the
        input depth is smaller than the kernel depth (or unknown, to be safe).

    Example:
        >>> needs_conv3d_guard(2, 3, "mixed_bfloat16")
        True
        >>> needs_conv3d_guard(2, 3, "float32")
        False
    """
    policy = as_policy(policy)
    if not guard_enabled():
        return False
    if policy.compute_dtype != "bfloat16":
        return False
    return input_depth is None or int(input_depth) < int(kernel_depth)
