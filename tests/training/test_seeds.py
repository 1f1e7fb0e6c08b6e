"""``kerasmer train --seeds``: one ordinary run per seed, a summary with mean ± std, and per-seed resume."""

import json

import numpy as np
import pytest

from kerasmer.cli.main import main
from kerasmer.training import RunConfig, run
from tests.cli.test_train_cli import FAST


def test_seeds_run_the_protocol_once_each_and_summarise(synthetic_root, tmp_path, capsys):
    out = tmp_path / "seeds"
    args = ["train", "--data", f"casme2={synthetic_root}", *FAST, "--verbose", "0", "--seeds", "0,1",
            "--folds", "01,02", "--out", str(out)]  # two folds per seed keep it short
    assert main(args) == 0
    summary = json.loads((out / "seeds.json").read_text())
    assert list(summary["seeds"]) == ["0", "1"]
    uf1 = []
    for seed in (0, 1):
        run_dir = out / f"seed_{seed}"
        config, metrics = (json.loads((run_dir / name).read_text()) for name in ("config.json", "metrics.json"))
        assert config["seed"] == seed and config["seeds"] is None and (run_dir / "report.md").is_file()
        entry = summary["seeds"][str(seed)]
        assert entry["scores"]["pooled"]["uf1"] == metrics["pooled"]["uf1"] and entry["folds"] == 2
        assert entry["baselines"]["majority"]["uf1"] == metrics["baselines"]["scores"]["majority"]["uf1"]
        uf1.append(metrics["pooled"]["uf1"])
    spread = summary["mean_std"]["pooled"]["uf1"]
    assert spread["mean"] == pytest.approx(np.mean(uf1)) and spread["std"] == pytest.approx(np.std(uf1, ddof=1))
    line = f"| mean ± std | pooled | {np.mean(uf1):.4f} ± {np.std(uf1, ddof=1):.4f} |"
    assert line in (out / "seeds.md").read_text() and line in capsys.readouterr().out

    # the same command again resumes each seed: every fold is already finished, nothing is retrained
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("seed_*/folds/*/result.json")}
    assert len(stamps) == 4
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("seed_*/folds/*/result.json")} == stamps
    assert json.loads((out / "seeds.json").read_text())["mean_std"] == summary["mean_std"]


@pytest.mark.parametrize("seeds, match", [("0,0", "distinct"), ("0,x", "'x'"), ("-1", "'-1'")])
def test_bad_seeds_are_named(tmp_path, seeds, match):
    with pytest.raises(SystemExit, match=f"config seeds: .*{match}"):
        main(["train", "--synthetic", "--seeds", seeds, "--out", str(tmp_path / "x")])


def test_run_takes_one_seed(tmp_path):
    with pytest.raises(ValueError, match=r"run_seeds\(config\) runs them all"):
        run(RunConfig(seeds=[0, 1], output_dir=str(tmp_path / "x")), progress=False)
