"""Precision selection (``precision="auto"``), scoping, and what runs record about it (kerasmer.core.precision)."""

import json
import logging

import keras
import pytest
import tensorflow as tf

import kerasmer
from kerasmer.core import precision as P


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


# ---------------------------------------------------------------- validate_precision


@pytest.mark.parametrize(
    "name, expected",
    [("auto", "auto"), (" AUTO ", "auto"), ("float32", "float32"), ("fp16", "mixed_float16"),
     ("bf16", "mixed_bfloat16"), ("Mixed_BFloat16", "mixed_bfloat16")],
)
def test_validate_precision_normalises_without_resolving(name, expected, monkeypatch):
    # Must not touch TensorFlow: GPU detection would fail the test.
    monkeypatch.setattr(P, "_gpu_available", lambda: pytest.fail("validate_precision detected devices"))
    monkeypatch.setattr(P, "cpu_supports_bf16", lambda *a: pytest.fail("validate_precision read the CPU flags"))
    assert P.validate_precision(name) == expected
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("bad", ["float64", "mixed_bf16", "", "int8"])
def test_validate_precision_names_the_bad_value_and_the_choices(bad):
    with pytest.raises(ValueError) as err:
        P.validate_precision(bad)
    message = str(err.value)
    assert repr(bad) in message
    for choice in ("auto", *P.POLICIES, "bf16"):
        assert choice in message


def test_validate_precision_refuses_pure_half_and_non_strings():
    with pytest.raises(ValueError, match="'bfloat16'.*mixed_bfloat16"):
        P.validate_precision("bfloat16")
    with pytest.raises(ValueError, match="string.*auto"):
        P.validate_precision(32)


# ---------------------------------------------------------------- precision_scope


def test_precision_scope_sets_and_restores_the_policy():
    keras.config.set_dtype_policy("mixed_float16")
    with P.precision_scope("bf16") as policy:
        assert policy == "mixed_bfloat16"
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        assert P.current_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_float16"


def test_precision_scope_restores_the_policy_on_error():
    with pytest.raises(RuntimeError, match="boom"):
        with P.precision_scope("mixed_bfloat16"):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert keras.config.dtype_policy().name == "float32"


def test_precision_scope_bad_name_leaves_the_policy_alone():
    with pytest.raises(ValueError, match="'fp64'"):
        with P.precision_scope("fp64"):
            pytest.fail("entered the scope")
    assert keras.config.dtype_policy().name == "float32"


def test_precision_scope_auto_resolves(monkeypatch):
    monkeypatch.setattr(P, "_gpu_available", lambda: False)
    monkeypatch.setattr(P, "cpu_supports_bf16", lambda *a: True)
    with P.precision_scope("auto") as policy:
        assert policy == "mixed_bfloat16" == keras.config.dtype_policy().name
    assert keras.config.dtype_policy().name == "float32"


def test_precision_environment_inside_a_scope_records_it():
    with P.precision_scope("mixed_bfloat16"):
        assert P.precision_environment(probe_onednn=False)["precision"] == "mixed_bfloat16"
    assert P.precision_environment(probe_onednn=False)["precision"] == "float32"


# ---------------------------------------------------------------- build_model(precision=...)


def test_build_model_under_a_precision_keeps_the_global_policy():
    model = kerasmer.build_model("learnet", num_classes=3, input_shape=(32, 32, 3), precision="mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("conv1").variable_dtype == "float32"
    assert model.get_layer("fc").compute_dtype == "bfloat16"
    assert model.get_layer("predictions").compute_dtype == "float32"  # the head stays float32
    assert model.outputs[0].dtype == "float32"
    # Without precision, the global policy decides, as before.
    plain = kerasmer.build_model("learnet", num_classes=3, input_shape=(32, 32, 3))
    assert plain.get_layer("conv1").compute_dtype == "float32"


def test_build_model_precision_restores_the_policy_when_the_build_fails():
    keras.config.set_dtype_policy("mixed_float16")
    with pytest.raises(ValueError):
        kerasmer.build_model("meranet18", input_shape=(16, 32, 32), precision="mixed_bfloat16")
    assert keras.config.dtype_policy().name == "mixed_float16"
    with pytest.raises(ValueError, match="'half'"):
        kerasmer.build_model("learnet", precision="half")
    assert keras.config.dtype_policy().name == "mixed_float16"
