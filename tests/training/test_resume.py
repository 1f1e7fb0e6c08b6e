"""Resume: a run killed with SIGKILL mid-fold and restarted equals an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd

from kerasmer.training.resume import FoldCheckpoint

from .conftest import SHAPE


def _cmd(root, out):
    return [sys.executable, "-m", "kerasmer.cli.main", "train", "--data", f"casme2={root}", "--model", "learnet",
            "--recipe", "shallow", "--set", "plateau_patience=1", "--epochs", "4", "--batch-size", "8",
            "--input-shape", ",".join(map(str, SHAPE)), "--folds", "01,02", "--seed", "7", "--out", str(out),
            "--checkpoint-every", "0"]  # a checkpoint after every epoch: the kill below waits for epoch 1's


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def test_sigkill_mid_fold_then_restart_equals_uninterrupted_run(synthetic_root, tmp_path):
    full = subprocess.run(_cmd(synthetic_root, tmp_path / "full"), env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert full.returncode == 0, full.stderr[-3000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(synthetic_root, out), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pointer = out / "folds" / "02" / "checkpoint" / "latest.json"
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if pointer.is_file() and json.loads(pointer.read_text())["epoch"] >= 1:
                proc.send_signal(signal.SIGKILL)  # mid-fold: epoch 1 of 4 of the second fold is done
                break
            time.sleep(0.02)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run was killed, not finished"
    assert (out / "folds" / "01" / "result.json").is_file()
    assert not (out / "folds" / "02" / "result.json").is_file()

    again = subprocess.run(_cmd(synthetic_root, out), env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "fold 01: already finished, skipped" in again.stdout
    assert "fold 02: resuming after epoch" in again.stdout
    assert "taking over the stale lock of a run that was killed" in again.stdout  # the run-directory lock
    resumed = json.loads((out / "folds" / "02" / "result.json").read_text())
    assert 1 <= resumed["resumed_from_epoch"] < 4

    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert b["pooled"] == a["pooled"]
    for fa, fb in zip(a["folds"], b["folds"]):
        for key in ("accuracy", "uf1", "uar", "war", "evaluated_epoch", "epochs_run", "confusion_matrix"):
            assert fb[key] == fa[key], key
    pa, pb = pd.read_csv(tmp_path / "full" / "predictions.csv"), pd.read_csv(out / "predictions.csv")
    prob = [c for c in pa.columns if c.startswith("p_")]
    np.testing.assert_allclose(pb[prob].to_numpy(), pa[prob].to_numpy(), rtol=0, atol=1e-6)
    hist_a = json.loads((tmp_path / "full" / "folds" / "02" / "result.json").read_text())["history"]
    np.testing.assert_allclose(resumed["history"]["val_loss"], hist_a["val_loss"], rtol=1e-6)


def test_checkpoint_survives_a_kill_during_its_write(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dropout(0.5)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    model.optimizer.build(model.trainable_variables)
    ckpt = FoldCheckpoint(tmp_path / "ckpt")
    assert ckpt.restore(model) is None
    saved = [v.numpy().copy() for v in model.variables]
    ckpt.save(model, epoch=1, state={"history": {"loss": [1.0]}}, best_weights=model.get_weights())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (tmp_path / "ckpt" / f".tmp-{dead}-0badf00d-ckpt-00002").mkdir()  # what a writer killed mid-save leaves
    for v in model.trainable_variables:
        v.assign(v.numpy() + 1)
    model.optimizer.iterations.assign(5)
    state, best = ckpt.restore(model)
    assert state["epoch"] == 1 and state["history"] == {"loss": [1.0]}
    for v, s in zip(model.variables, saved):
        np.testing.assert_array_equal(v.numpy(), s)
    assert int(model.optimizer.iterations.numpy()) == 0 and len(best) == 2
    ckpt.save(model, epoch=2, state={})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["ckpt-00002", "latest.json"]


def test_an_unchanged_best_is_linked_not_rewritten(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.optimizer.build(model.trainable_variables)
    ckpt = FoldCheckpoint(tmp_path / "ckpt")
    first = model.get_weights()
    ckpt.save(model, epoch=1, state={}, best_weights=first)
    inode = os.stat(tmp_path / "ckpt" / "ckpt-00001" / "best.npz").st_ino
    ckpt.save(model, epoch=2, state={}, best_weights=first)  # the selector kept its best: same list
    path = tmp_path / "ckpt" / "ckpt-00002" / "best.npz"
    assert os.stat(path).st_ino == inode and not (tmp_path / "ckpt" / "ckpt-00001").exists()  # pruned, kept
    _, best = ckpt.restore(model)
    for b, w in zip(best, first):
        np.testing.assert_array_equal(b, w)
    better = [w + 1 for w in first]  # a new best: a new list, written anew
    ckpt.save(model, epoch=3, state={}, best_weights=better)
    assert os.stat(tmp_path / "ckpt" / "ckpt-00003" / "best.npz").st_ino != inode
    _, best = ckpt.restore(model)
    for b, w in zip(best, better):
        np.testing.assert_array_equal(b, w)
    # a fresh FoldCheckpoint (a resumed process) has nothing to link to: it writes
    again = FoldCheckpoint(tmp_path / "ckpt")
    again.save(model, epoch=4, state={}, best_weights=better)
    _, best = again.restore(model)
    np.testing.assert_array_equal(best[0], better[0])


def test_checkpoints_are_written_at_most_every_n_seconds(tmp_path, monkeypatch):
    # RunConfig.checkpoint_every: a short epoch skips its checkpoint until the interval has passed.
    from kerasmer.training import resume

    now = [100.0]
    monkeypatch.setattr(resume.time, "monotonic", lambda: now[0])
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    ckpt = FoldCheckpoint(tmp_path / "ckpt", every=30.0)
    assert not ckpt.due()                       # the fold has just started
    now[0] += 29.9
    assert not ckpt.due()
    now[0] += 0.1
    assert ckpt.due()
    ckpt.save(model, epoch=4, state={"history": {}})
    assert not ckpt.due()                       # the interval restarts at the save
    now[0] += 30.0
    assert ckpt.due() and FoldCheckpoint(tmp_path / "other").due()  # every=0 (the default): always due
