"""The benchmark scripts cannot rot: each runs in ``--quick`` mode, and the harness they share works.

* ``benchmarks/_harness.py``: the wait for a quiet machine (reached, timed out, skipped), the ABAB
  interleaving, medians and ratios, the JSON record;
* every script in ``benchmarks/`` runs end to end with ``--quick`` and waiting disabled
  (``KERASMER_BENCH_NO_WAIT=1``), prints its table and writes its record.  ``peer_pytorch.py`` needs
  the optional ``torch`` (skipped without it: torch is never a kerasmer dependency) and, without it,
  must say so and exit cleanly.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("_harness", BENCH / "_harness.py")
harness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(harness)


def _args(**kw):
    base = dict(quick=True, no_wait=False, load_threshold=0.6, wait_timeout=100.0, rounds=3, json=None)
    return argparse.Namespace(**{**base, **kw})


class FakeClock:
    def __init__(self, loads):
        self.now, self.loads, self.sleeps = 0.0, list(loads), []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def load(self):
        return self.loads.pop(0) if len(self.loads) > 1 else self.loads[0]


def test_wait_until_quiet():
    fake = FakeClock([3.0, 1.2, 0.5])
    record = harness.wait_for_quiet(0.6, 100, poll=10, clock=fake.clock, sleep=fake.sleep, load=fake.load)
    assert record == {"quiet": True, "load": 0.5, "waited_s": 20.0, "threshold": 0.6}


def test_wait_gives_up_and_records_the_load():
    fake = FakeClock([2.5])
    record = harness.wait_for_quiet(0.6, 35, poll=10, clock=fake.clock, sleep=fake.sleep, load=fake.load)
    assert record["quiet"] is False and record["load"] == 2.5
    assert sum(fake.sleeps) == pytest.approx(35)  # the last sleep is cut to the timeout


def test_wait_disabled():
    fake = FakeClock([9.0])
    record = harness.wait_for_quiet(0.6, 100, enabled=False, clock=fake.clock, sleep=fake.sleep, load=fake.load)
    assert record["quiet"] is None and record["load"] == 9.0 and not fake.sleeps


def test_block_interleaves_and_reports(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(harness.NO_WAIT_ENV, "1")
    h = harness.Harness(_args(json=str(tmp_path / "r.json")), "test")
    calls = []
    values = {"a": iter([4.0, 2.0, 3.0]), "b": iter([8.0, 1.0, 6.0])}

    def config(key):
        def run():
            calls.append(key)
            return next(values[key])
        return run

    block = h.block("demo", {"a": config("a"), "b": config("b")}, unit="x/s", info={"n": 1})
    assert calls == ["a", "b"] * 3
    assert block["configs"]["a"]["median"] == 3.0 and block["configs"]["b"]["median"] == 6.0
    assert block["configs"]["b"]["ratio"] == 2.0 and block["wait"]["quiet"] is None
    assert len(block["load_rounds"]) == 3
    record = h.report()
    out = capsys.readouterr().out
    assert "| demo | b | 6 | x/s | 2.000 | a |" in out and "not waited" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["blocks"][0]["configs"]["a"]["samples"] == [4.0, 2.0, 3.0]
    assert saved["machine"]["cpu"] == record["machine"]["cpu"] and saved["machine"]["logical_cpus"]


def test_block_times_calls_as_rates():
    h = harness.Harness(_args(no_wait=True, rounds=2), "test")
    block = h.block("t", {"a": lambda: sum(range(1000))}, unit="items/s", timed=True, work=1000, warmup=1)
    assert block["configs"]["a"]["median"] > 0 and len(block["configs"]["a"]["samples"]) == 2
    with pytest.raises(ValueError, match="no configuration"):
        h.block("empty", {}, unit="s")


def _run(script, tmp_path, *extra):
    env = dict(os.environ, KERASMER_BENCH_NO_WAIT="1", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    out_json = tmp_path / f"{script}.json"
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--json", str(out_json), *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    return proc, out_json


# Blocks a script's quick run must produce; every bench_*.py in benchmarks/ is run, listed here or not.
EXPECTED_BLOCKS = {
    "bench_bf16.py": ["resnet3d18 train step"],
    "bench_training.py": ["learnet: matmul peak", "learnet training"],
    "bench_pipeline.py": ["learnet pipeline vs training", "learnet on flow pipeline vs training"],
}
SCRIPTS = sorted(p.name for p in BENCH.glob("bench_*.py"))


def test_the_known_scripts_are_found():
    assert set(EXPECTED_BLOCKS) <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_quick(script, tmp_path):
    proc, out_json = _run(script, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "not waiting for a quiet machine" in proc.stdout and "| block | configuration |" in proc.stdout
    record = json.loads(out_json.read_text())
    assert record["quick"] is True and record["machine"]["cpu"] and record["blocks"]
    names = [b["block"] for b in record["blocks"]]
    blocks = EXPECTED_BLOCKS.get(script, [])
    for name in blocks:
        assert name in names, names
    for b in record["blocks"]:
        assert all(c["median"] > 0 for c in b["configs"].values()), b
        assert b["wait"]["quiet"] is None and "load_before" in b


def test_peer_pytorch_quick(tmp_path):
    pytest.importorskip("torch")  # the one allowed skip: PyTorch is an optional peer
    proc, out_json = _run("peer_pytorch.py", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "parameters kerasmer 33,167,811, PyTorch 33,167,811" in proc.stdout
    record = json.loads(out_json.read_text())
    assert record["notes"]["resnet3d18 check"]["max_abs_output_diff"] < 1e-4
    assert {b["block"] for b in record["blocks"]} == {"resnet3d18 float32 training", "resnet3d18 bf16 training"}
    for b in record["blocks"]:
        assert b["configs"]["kerasmer"]["median"] > 0 and b["configs"]["pytorch"]["median"] > 0


def test_peer_pytorch_without_torch(tmp_path):
    # A torch that cannot be imported: the script says so and exits cleanly, before TensorFlow loads.
    (tmp_path / "torch.py").write_text("raise ImportError('no torch here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), KERASMER_BENCH_NO_WAIT="1")
    proc = subprocess.run([sys.executable, str(BENCH / "peer_pytorch.py"), "--quick"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "PyTorch is not installed" in proc.stdout and "optional peer" in proc.stdout
