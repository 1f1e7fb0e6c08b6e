"""``--strategy mirrored`` on two logical CPU devices; ``--init-from`` and ``--freeze``."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kerasmer
from kerasmer.evaluation import loso_folds
from kerasmer.models.transfer import init_weights
from kerasmer.training import FoldTrainer, TrainSpec
from kerasmer.training.recipes import get_recipe

from .conftest import SHAPE


def test_mirrored_strategy_on_two_logical_cpus(synthetic_root, tmp_path):
    # Logical devices must be configured before TensorFlow initialises them: a fresh process.
    code = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from kerasmer.training import RunConfig, run
        result = run(RunConfig(model="learnet", data={{"casme2": {str(synthetic_root)!r}}}, recipe="learnet",
                               recipe_overrides={{"epochs": 2, "batch_size": 8}}, input_shape={SHAPE},
                               folds=["01"], strategy="mirrored", deterministic=False,
                               output_dir={str(tmp_path / "mirrored")!r}), progress=False)
        print("FOLDS", [f.name for f in result.folds], result.folds[0].epochs_run)
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FOLDS ['01'] 2" in proc.stdout
    env_rec = json.loads((tmp_path / "mirrored" / "config.json").read_text())["environment"]
    assert env_rec["strategy"] == "mirrored" and env_rec["replicas"] == 2
    fold = json.loads((tmp_path / "mirrored" / "folds" / "01" / "result.json").read_text())
    assert np.isfinite(fold["history"]["loss"]).all()


def test_multiworker_needs_tf_config(monkeypatch):
    from kerasmer.training.distribute import get_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        get_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid"):
        get_strategy("multiworker")
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'"):
        get_strategy("tpu")


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_init_from_and_freeze(synthetic_df, tmp_path, suffix):
    names = sorted(synthetic_df["emotion"].unique())
    # A "pre-trained" source with a different head (5 classes): the head must be reported, not copied.
    source = kerasmer.build_model("learnet", num_classes=5, input_shape=tuple(SHAPE))
    path = tmp_path / f"source{suffix}"
    source.save(path) if suffix == ".keras" else source.save_weights(path)
    messages = []
    fold = loso_folds(synthetic_df, seed=0)[0]
    spec = TrainSpec(model="learnet", class_names=names, input_shape=SHAPE,
                     recipe=get_recipe("learnet", epochs=1, batch_size=8, learning_rate=0.1),
                     init_from=path, freeze=("conv1", "lateral_conv2_*"))
    model, res = FoldTrainer(spec, log=messages.append).train(synthetic_df, fold)
    t = res.transfer
    assert "conv1" in t["matched"] and "conv5" in t["matched"] and "predictions" in t["shape_mismatch"]
    assert "predictions" in t["unmatched_target"]
    assert t["frozen"] == ["conv1", "lateral_conv2_1", "lateral_conv2_2", "lateral_conv2_3", "lateral_conv2_4"]
    assert any("layers matched" in m for m in messages)
    for name in t["frozen"]:  # frozen: still exactly the source's weights after training
        for a, b in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    changed = [not np.array_equal(a, b) for a, b in zip(model.get_layer("conv5").get_weights(),
                                                        source.get_layer("conv5").get_weights())]
    assert any(changed), "unfrozen layers keep training"


def test_init_from_rejects_other_files(tmp_path):
    model = kerasmer.build_model("learnet", num_classes=3, input_shape=tuple(SHAPE))
    with pytest.raises(FileNotFoundError, match="no such file"):
        init_weights(model, tmp_path / "missing.keras")
    (tmp_path / "w.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"must be a \.keras or \.weights\.h5 file"):
        init_weights(model, tmp_path / "w.h5")
