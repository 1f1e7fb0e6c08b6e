"""``--strategy mirrored`` on two logical CPU devices; ``--init-from`` and ``--freeze``."""

import json
import os
import socket
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


def test_only_the_chief_runs_into_the_run_directory(monkeypatch, tmp_path):
    from kerasmer.training.distribute import run_directory

    def task(kind, index, chief=False):
        cluster = {"worker": ["a:1", "b:2"], **({"chief": ["c:3"]} if chief else {})}
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))
        return run_directory("multiworker", tmp_path)

    assert task("worker", 0) == tmp_path
    assert task("worker", 1) == tmp_path / "workers" / "1"
    assert task("chief", 0, chief=True) == tmp_path
    assert task("worker", 0, chief=True) == tmp_path / "workers" / "0"  # a named chief: worker 0 is not it
    assert run_directory("mirrored", tmp_path) == tmp_path
    monkeypatch.setenv("TF_CONFIG", "{not json")  # left to get_strategy, whose error says what TF_CONFIG needs
    assert run_directory("multiworker", tmp_path) == tmp_path


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


# One worker's whole run, in a fresh process (a TF_CONFIG is read once, when TensorFlow starts its cluster).
_WORKER = textwrap.dedent("""
    import json, sys
    from kerasmer.training import run
    fold = run(json.loads(sys.argv[1]), progress=False).folds[0]
    print("RESULT " + json.dumps({"loss": fold.history["loss"], "val_loss": fold.history["val_loss"],
                                  "probabilities": fold.probabilities.tolist()}))
""")


def _free_ports(n: int) -> list:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:  # all bound at once, so the n ports differ
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start(config: dict, tf_config: dict | None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(config)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _results(procs, timeout: float = 240) -> list:
    """Each process's RESULT line; on a failure or a timeout every process is killed (no worker waits forever)."""
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:]) for out, _ in outs]


def test_two_multiworker_processes_match_one_worker(synthetic_root, tmp_path):
    # No dropout (its masks are drawn per replica) and no batch norm (per-replica batch statistics): what is left
    # to differ is the data each worker sees and the all-reduce of the gradients, which this test checks.
    base = dict(model="learnet", data={"casme2": str(synthetic_root)}, recipe="learnet",
                recipe_overrides={"epochs": 2, "batch_size": 8}, input_shape=SHAPE, folds=["01"],
                model_overrides={"dropout": 0.0, "normalization": "lrn"})
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    multi = dict(base, strategy="multiworker", output_dir=str(tmp_path / "multi"))
    procs = [_start(multi, {"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(2)]
    # The reference: one process on one device, the same global batch of 8 (the workers' replicas get 4 + 4).
    procs.append(_start(dict(base, strategy="default", output_dir=str(tmp_path / "single")), None))
    chief, worker, single = _results(procs)

    run_dir = tmp_path / "multi"
    assert json.loads((run_dir / "config.json").read_text())["environment"]["replicas"] == 2
    assert (run_dir / "report.md").is_file() and (run_dir / "folds" / "01" / "result.json").is_file()
    assert (run_dir / "workers" / "1" / "folds" / "01" / "result.json").is_file()  # the worker's own folder
    assert not (run_dir / "workers" / "0").exists()  # worker 0 is the chief
    # Same weights, same examples in every global batch: only float sums in another order (each replica's half,
    # then the all-reduce) may round differently; 1e-5 is ~100 float32 ulps of a loss of ~1.1 (seen: ~1e-7).
    # The data order counts: before fit_under, Keras' pre-read of one batch under a strategy made every epoch
    # read its reshuffled second pass, and the epoch-1 loss moved by 1.5e-3.
    # (With auto-sharding OFF, each worker reading every batch whole, the run fails outright: predict returns 8
    # rows for the 6 test clips.)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(chief[key], single[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(chief["probabilities"], single["probabilities"], atol=1e-5)
    np.testing.assert_allclose(worker["probabilities"], chief["probabilities"], atol=1e-6)
