"""Choosing and recording the training precision (dtype policy).

``precision="auto"`` picks the fastest policy this machine computes correctly:

* ``mixed_float16`` when TensorFlow sees a GPU (tensor cores; Keras' loss
  scaling keeps float16 gradients in range);
* ``mixed_bfloat16`` on a CPU with native bfloat16 arithmetic (x86 AVX-512 BF16
  or AMX-BF16), about 1.7x faster than float32 for 3D CNN training there.
  Conv3D layers that would hit oneDNN's bf16 weight-gradient bug stay float32
  (see :mod:`kerasmer.layers.precision`);
* ``float32`` otherwise: on a CPU without bf16 units, bf16 is emulated and slower.

:func:`precision_environment` returns what a run config should record so a
result can be traced to the precision and the TensorFlow / Keras / oneDNN
versions that produced it.

Example:
    >>> from kerasmer.training.precision import apply_precision, precision_environment
    >>> apply_precision("auto")            # doctest: +SKIP
    'mixed_bfloat16'
    >>> precision_environment()["onednn_version"]   # doctest: +SKIP
    '3.7.3'
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import re
import subprocess
import sys

import keras

logger = logging.getLogger(__name__)

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# Short names people type; they resolve to the Keras policy names above.
ALIASES = {"fp32": "float32", "fp16": "mixed_float16", "bf16": "mixed_bfloat16"}
# x86 /proc/cpuinfo flags meaning the CPU computes bfloat16 natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


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


def resolve_precision(precision: str, *, gpu_available: bool | None = None, cpu_bf16: bool | None = None) -> str:
    """Turn a precision setting into a Keras dtype policy name.

    Args:
        precision: ``"auto"``, one of :data:`POLICIES`, or an alias in
            :data:`ALIASES` (``"fp32"``, ``"fp16"``, ``"bf16"``); case-insensitive.
        gpu_available: override GPU detection (for tests); detected when None.
        cpu_bf16: override CPU bf16 detection (for tests); detected when None.

    Returns:
        ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.  The choice
        (and for ``"auto"``, the reason) is logged at INFO level.

    Raises:
        ValueError: an unknown name, or a pure half-precision policy
            (``"float16"``/``"bfloat16"``), which would keep weights in half
            precision and is not supported for training.

    Example:
        >>> resolve_precision("auto", gpu_available=False, cpu_bf16=True)
        'mixed_bfloat16'
    """
    if not isinstance(precision, str):
        raise ValueError(f"precision must be a string, got {precision!r}")
    name = ALIASES.get(precision.strip().lower(), precision.strip().lower())
    if name in ("float16", "bfloat16"):
        raise ValueError(
            f"precision={precision!r}: pure {name} keeps the weights in {name} and is not supported "
            f"for training; use 'mixed_{name}' (or 'auto')"
        )
    if name == "auto":
        gpu = _gpu_available() if gpu_available is None else bool(gpu_available)
        if gpu:
            resolved, why = "mixed_float16", "a GPU is visible"
        else:
            bf16 = cpu_supports_bf16() if cpu_bf16 is None else bool(cpu_bf16)
            if bf16:
                resolved, why = "mixed_bfloat16", "no GPU; the CPU has native bfloat16 (AVX512_BF16/AMX)"
            else:
                resolved, why = "float32", "no GPU and no native bfloat16 on this CPU"
        logger.info("precision='auto' -> %s (%s)", resolved, why)
        return resolved
    if name not in POLICIES:
        raise ValueError(
            f"Unknown precision {precision!r}; expected 'auto', one of {', '.join(POLICIES)} "
            f"or an alias ({', '.join(f'{k}={v}' for k, v in ALIASES.items())})"
        )
    if name == "mixed_float16" and gpu_available is False:
        # Explicit requests are honoured, but float16 on a CPU is emulated and slow.
        logger.warning("precision='mixed_float16' without a GPU: float16 is emulated on CPU and slow")
    logger.info("precision=%r -> %s", precision, name)
    return name


def apply_precision(precision: str) -> str:
    """Resolve ``precision`` and set it as Keras' global dtype policy.

    Set the policy *before* building the model: layers read it when created,
    and the Conv3D bf16 guard decides each layer's dtype at that moment.

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
        A JSON-serialisable dict: ``precision`` (the global policy in effect),
        ``compute_dtype``, ``variable_dtype``, ``tensorflow``, ``keras``,
        ``onednn_enabled``, ``onednn_version``, ``tf_enable_onednn_opts`` (the
        environment variable, or None), ``cpu_bf16``, ``gpus`` (count),
        ``machine`` and ``bf16_conv3d_guard`` (whether the guard is active).

    Example:
        >>> env = precision_environment(probe_onednn=False)
        >>> sorted(env)[:3]
        ['bf16_conv3d_guard', 'compute_dtype', 'cpu_bf16']
    """
    import tensorflow as tf

    from kerasmer.layers.precision import guard_enabled

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
