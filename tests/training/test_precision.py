"""Precision selection (``precision="auto"``) and what runs record about it."""

import json
import logging

import keras
import pytest
import tensorflow as tf

from kerasmer.training import precision as P


@pytest.mark.parametrize(
    "gpu, bf16, expected",
    [
        (True, True, "mixed_float16"),
        (True, False, "mixed_float16"),
        (False, True, "mixed_bfloat16"),
        (False, False, "float32"),
    ],
)
def test_auto_picks_by_hardware_and_logs(gpu, bf16, expected, caplog):
    with caplog.at_level(logging.INFO, logger=P.__name__):
        assert P.resolve_precision("auto", gpu_available=gpu, cpu_bf16=bf16) == expected
    assert any(expected in r.getMessage() and "auto" in r.getMessage() for r in caplog.records)


def test_auto_uses_real_detection_on_this_machine():
    expected = (
        "mixed_float16"
        if tf.config.list_physical_devices("GPU")
        else ("mixed_bfloat16" if P.cpu_supports_bf16() else "float32")
    )
    assert P.resolve_precision("auto") == expected


@pytest.mark.parametrize(
    "name, expected",
    [("float32", "float32"), ("FP32", "float32"), ("bf16", "mixed_bfloat16"), (" Mixed_Float16 ", "mixed_float16")],
)
def test_explicit_names_and_aliases(name, expected):
    assert P.resolve_precision(name, gpu_available=True) == expected


@pytest.mark.parametrize("bad", ["float64", "mixed_bf16", "", "int8"])
def test_unknown_name_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="Unknown precision.*auto"):
        P.resolve_precision(bad)


@pytest.mark.parametrize("bad", ["bfloat16", "float16"])
def test_pure_half_policies_are_refused(bad):
    with pytest.raises(ValueError, match=f"mixed_{bad}"):
        P.resolve_precision(bad)


def test_non_string_is_refused():
    with pytest.raises(ValueError, match="string"):
        P.resolve_precision(None)


def test_fp16_on_cpu_warns(caplog):
    with caplog.at_level(logging.WARNING, logger=P.__name__):
        P.resolve_precision("mixed_float16", gpu_available=False)
    assert any(r.levelno == logging.WARNING and "GPU" in r.getMessage() for r in caplog.records)


def test_cpu_flag_parsing():
    assert P.cpu_supports_bf16("processor : 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    assert P.cpu_supports_bf16("flags : fpu amx_tile amx_bf16\n")
    assert not P.cpu_supports_bf16("flags : fpu sse avx512f avx512_vnni\n")
    # A flag name inside another word, or outside a flags line, does not count.
    assert not P.cpu_supports_bf16("flags : fpu xavx512_bf16\nbugs : avx512_bf16\n")
    assert not P.cpu_supports_bf16("")


def test_apply_precision_sets_the_global_policy():
    assert P.apply_precision("bf16") == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
    assert P.apply_precision("float32") == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_precision_environment_records_versions():
    P.apply_precision("mixed_bfloat16")
    env = P.precision_environment()
    json.dumps(env)  # must go into a run config as is
    assert env["precision"] == "mixed_bfloat16"
    assert env["compute_dtype"] == "bfloat16" and env["variable_dtype"] == "float32"
    assert env["tensorflow"] == tf.__version__
    assert env["keras"] == keras.__version__
    assert env["bf16_conv3d_guard"] is True
    if env["onednn_enabled"]:
        # oneDNN is on (x86 Linux default): the probe must find its version.
        assert env["onednn_version"] and env["onednn_version"][0].isdigit(), env
    no_probe = P.precision_environment(probe_onednn=False)
    assert no_probe["onednn_version"] is None


def test_environment_records_disabled_guard(monkeypatch):
    monkeypatch.setenv("KERASMER_DISABLE_BF16_GUARD", "1")
    assert P.precision_environment(probe_onednn=False)["bf16_conv3d_guard"] is False
