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
    "bench_bias.py": ["learnet training, batch 2", "learnet inference, batch 1"],
    "bench_training.py": ["learnet: matmul peak", "learnet training"],
    "bench_pipeline.py": ["learnet pipeline vs training", "learnet on flow pipeline vs training"],
    "bench_overhead.py": ["learnet, checkpoint_every=0", "learnet, checkpoint_every=30"],
    "bench_predict.py": ["SavedModel load + first call (fresh process)", "learnet latency, batch 1"],
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


def test_bf16_exit_code_fails_only_on_the_modes_that_must_train():
    # CI once saw the unguarded bf16 step reach NaN at 4x16x16 clips: that is the oneDNN bug the guard
    # exists for, so it is reported but does not fail the run; a NaN with the guard or in float32 does.
    bspec = importlib.util.spec_from_file_location("bench_bf16", BENCH / "bench_bf16.py")
    bench = importlib.util.module_from_spec(bspec)
    bspec.loader.exec_module(bench)
    row = lambda mode, ok: dict(model="m", mode=mode, loss_finite=ok)  # noqa: E731
    assert bench.exit_code([row("float32", True), row("bf16+guard", True), row("bf16-noguard", False)]) == 0
    assert bench.exit_code([row("float32", True), row("bf16+guard", False), row("bf16-noguard", True)]) == 1
    assert bench.exit_code([row("float32", False)]) == 1


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


# --- benchmarks/leaderboard.py (issue 12): every registered model has a row; a row's command is its run -----

_lb_spec = importlib.util.spec_from_file_location("leaderboard", BENCH / "leaderboard.py")
leaderboard = importlib.util.module_from_spec(_lb_spec)
sys.modules["leaderboard"] = leaderboard  # its dataclasses look their module up while the file runs
_lb_spec.loader.exec_module(leaderboard)


def test_leaderboard_has_a_row_per_registered_model():
    import kerasmer

    assert sorted(r.model for r in leaderboard.ROWS) == sorted(kerasmer.list_models())


@pytest.mark.parametrize("row", leaderboard.ROWS, ids=lambda r: r.model)
def test_leaderboard_row_command_is_the_run_it_makes(row, tmp_path):
    # The command printed beside each row, given to `kerasmer train`'s own parser, makes the same config as
    # the row (model, input, recipe overrides, precision, synthetic set, seeds): the table can be reproduced.
    from kerasmer.cli.main import build_parser
    from kerasmer.cli.train import config_from_args

    args = leaderboard.parse_args(["--out", str(tmp_path)])
    settings = leaderboard.row_settings(row, args)
    ours = leaderboard.run_config(row, settings, args)
    argv = leaderboard.full_command(row, args, full=False).split()[1:]
    theirs = config_from_args(build_parser().parse_args(argv))
    for field in ("model", "input_shape", "recipe_overrides", "precision", "seeds", "protocol", "recipe"):
        assert getattr(theirs, field) == getattr(ours, field), field
    for key in ("preset", "seed", "subjects"):
        assert theirs.synthetic[key] == ours.synthetic[key], key
    full = config_from_args(build_parser().parse_args(leaderboard.full_command(row, args).split()[1:]))
    assert not full.recipe_overrides and "subjects" not in full.synthetic  # the preset's 24 subjects, the recipe's length
    paper = list(settings["paper_input"])
    assert full.input_shape is None or full.input_shape[:-1] == paper[:-1]  # the paper's size


def test_leaderboard_quick_writes_the_table_and_the_docs(tmp_path):
    docs = tmp_path / "bench.md"
    docs.write_text(f"# B\n\n{leaderboard.MARKERS[0]}\nold table\n{leaderboard.MARKERS[1]}\n\nafter\n")
    out = tmp_path / "lb"
    env = dict(os.environ, KERASMER_BENCH_NO_WAIT="1", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(BENCH / "leaderboard.py"), "--quick", "--out", str(out),
                           "--docs", str(docs)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((out / "leaderboard.json").read_text())
    (row,) = record["rows"]
    assert row["model"] == "learnet" and row["seeds"] == [0, 1] and row["folds"] == 2 * 3 and not row["failed"]
    assert row["parameters"] > 0 and row["seconds_per_fold_median"] > 0 and row["wait"]["quiet"] is None
    assert set(row["baselines"]) == {"majority", "apex_frame_lr", "apex_onset_diff_lr"}
    assert 0 <= row["pooled"]["uf1"]["mean"] <= 1 and row["pooled"]["uf1"]["seeds"] == 2
    text = docs.read_text()
    assert "old table" not in text and "| learnet | 32×32×3 (112×112×3) | 3 | 1 |" in text and text.endswith("after\n")
    assert "(not waited)" in text  # the load beside the row, and whether the machine was quiet
    # --render re-renders the saved table without training (the docs are made from the JSON)
    docs.write_text(f"{leaderboard.MARKERS[0]}\n{leaderboard.MARKERS[1]}\n")
    assert leaderboard.main(["--render", str(out / "leaderboard.json"), "--docs", str(docs)]) == 0
    assert docs.read_text().count("| learnet | 32×32×3 (112×112×3) |") == 1


def _saved_row(model, uf1):
    stat = lambda m: {"mean": m, "std": 0.01, "seeds": 3}  # noqa: E731
    floors = {k: {"uf1": stat(0.1)} for k in ("majority", "apex_frame_lr", "apex_onset_diff_lr")}
    return {"model": model, "input_shape": [32, 32, 3], "paper_input": [112, 112, 3], "epochs": 2, "subjects": 8,
            "precision": "float32", "parameters": 10, "folds": 24, "failed": 0,
            "pooled": {"uf1": stat(uf1), "uar": stat(uf1)}, "baselines": floors, "seconds_per_fold_median": 3.0,
            "load_start": 0.1, "load_end": 1.0, "wait": {"quiet": True}}


def test_leaderboard_keep_takes_the_rows_not_rerun_with_their_date(tmp_path):
    saved = tmp_path / "old.json"
    meta = {"seeds": "0,1,2", "data_seed": 0, "when": "2026-11-30 10:05 UTC", "machine": "AMD EPYC, 2 CPUs"}
    saved.write_text(json.dumps({"meta": meta, "rows": [_saved_row("learnet", 0.5), _saved_row("larnet", 0.25)]}))
    args = leaderboard.parse_args(["--keep", str(saved), "--models", "learnet"])
    kept = leaderboard.kept_rows(args.keep, args)
    # Until learnet's new row is finished its saved row stays: an interrupted launch loses no row.
    assert [r["model"] for r in kept] == ["learnet", "larnet"]
    assert all(r["measured"] == "2026-11-30, AMD EPYC, 2 CPUs" for r in kept)
    new = {**_saved_row("learnet", 0.75), "measured": "2026-12-01, Intel Xeon, 2 CPUs"}
    records = leaderboard.with_row(kept, new)  # replaces learnet's saved row, appended last
    assert [r["model"] for r in records] == ["learnet", "larnet"]  # the table's order, not the launch's
    table = leaderboard.render(records, {**meta, "when": "2026-12-01 05:00 UTC"})
    lines = [line for line in table.splitlines() if line.startswith("| l")]
    assert "**0.750 ± 0.010**" in lines[0] and lines[0].endswith("| 2026-12-01, Intel Xeon, 2 CPUs |")
    assert "**0.250 ± 0.010**" in lines[1] and lines[1].endswith("| 2026-11-30, AMD EPYC, 2 CPUs |")
    # A saved table of other folds (another seed set or data seed) is refused before anything trains.
    other = leaderboard.parse_args(["--keep", str(saved), "--models", "learnet", "--seeds", "0,1"])
    with pytest.raises(SystemExit, match="not the same folds"):
        leaderboard.kept_rows(other.keep, other)


def test_overhead_augment_option_replaces_the_recipes_augmentation(tmp_path):
    # bench_overhead --augment: the fold it measures gets these settings as data_options (which override the
    # recipe's augmentation); without it the recipe's stays, and the block keeps its old name.
    ospec = importlib.util.spec_from_file_location("bench_overhead", BENCH / "bench_overhead.py")
    bench = importlib.util.module_from_spec(ospec)
    ospec.loader.exec_module(bench)  # finds _harness: leaderboard.py above put benchmarks/ on sys.path
    args = bench.parse_args(["--models", "learnet", "--augment", '{"rotation": 0}'])
    config = bench.fold_config("learnet", 30.0, args, str(tmp_path / "a"))
    assert config.data_options == {"augment": {"rotation": 0}}
    assert config.recipe_overrides["batch_size"] == 25  # LEARNet's recipe batch
    plain = bench.fold_config("learnet", 30.0, bench.parse_args(["--models", "learnet"]), str(tmp_path / "b"))
    assert plain.data_options == {}
    with pytest.raises(SystemExit):
        bench.parse_args(["--augment", "rotation=0"])  # not JSON: refused by argparse, naming the option
