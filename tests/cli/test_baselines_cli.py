"""``kerasmer baselines``: the trivial baselines' scores under the protocol's folds, printed; bad input explained."""

import json

import pytest

from kerasmer.cli.main import main
from kerasmer.evaluation.baselines import BASELINES, run_baselines
from kerasmer.evaluation.protocols import make_folds
from tests.cli.test_train_cli import FAST


def test_baselines_command_prints_the_floor_of_the_protocols_folds(synthetic_root, synthetic_df, capsys):
    assert main(["baselines", "--data", f"casme2={synthetic_root}"]) == 0
    printed = capsys.readouterr().out
    names = sorted(synthetic_df["emotion"].unique())
    assert f"{len(synthetic_df)} clips, 4 subjects, protocol loso (4 folds), classes {', '.join(names)}" in printed
    expected = run_baselines(synthetic_df, make_folds("loso", synthetic_df), label_column="emotion", class_names=names)
    for name in BASELINES:  # the same numbers as the library call under the same folds
        s = expected[name]
        assert f"{name:>20} {'pooled':>16} {s['uf1']:>6.3f} {s['uar']:>6.3f}" in printed

    assert main(["baselines", "--data", f"casme2={synthetic_root}", "--protocol", "kfold", "--n-splits", "2",
                 "--size", "16,16"]) == 0
    printed = capsys.readouterr().out
    assert "protocol kfold (2 folds)" in printed and "grey 16x16" in printed


@pytest.mark.parametrize("flags, match", [
    (["--protocol", "nope"], "unknown protocol 'nope'"),
    (["--size", "32"], "--size expects HEIGHT,WIDTH"),
    (["--labels", "no_such_scheme"], "no_such_scheme"),
])
def test_bad_input_is_explained(synthetic_root, flags, match):
    with pytest.raises(SystemExit, match=match):
        main(["baselines", "--data", f"casme2={synthetic_root}", *flags])


def test_missing_dataset_root_is_named(tmp_path):
    with pytest.raises(SystemExit, match="kerasmer baselines: .*does not exist"):
        main(["baselines", "--data", f"casme2={tmp_path / 'nowhere'}"])


def test_train_without_baselines_reports_none(synthetic_root, tmp_path, capsys):
    """``--no-baselines`` (``baselines: false``) skips them: no file, no table, nothing printed."""
    out = tmp_path / "run"
    assert main(["train", "--data", f"casme2={synthetic_root}", *FAST, "--verbose", "0", "--folds", "01",
                 "--no-baselines", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["baselines"]["scores"] == {} and not (out / "baselines.json").exists()
    assert "Against trivial baselines" not in (out / "report.md").read_text()
    assert "apex_onset_diff_lr" not in capsys.readouterr().out
