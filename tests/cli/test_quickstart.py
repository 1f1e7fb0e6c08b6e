"""`kerasmer quickstart` end to end with tiny settings (the README's main job, shrunk)."""

import json

from kerasmer.cli.main import main


def test_quickstart_runs_and_exports(tmp_path, capsys):
    rc = main(["quickstart", "--data-dir", str(tmp_path / "data"), "--subjects", "3", "--clips-per-class", "1",
               "--epochs", "2", "--export-dir", str(tmp_path / "saved_models")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "pooled UF1 =" in out and "pooled UAR =" in out
    for subject in ("01", "02", "03"):
        assert f"        {subject} " in out  # one table row per LOSO fold
    version = tmp_path / "saved_models" / "learnet" / "1"
    assert (version / "saved_model.pb").is_file()
    meta = json.loads((version / "assets.extra" / "kerasmer.json").read_text())
    assert meta["class_names"] == ["negative", "positive", "surprise"]
    assert meta["normalization"]["applied_in_graph"] is True
    # the time breakdown: every stage printed with its seconds, the fold stages summed over the 3 folds
    tail = out[out.index("where the time went"):]
    seconds = {}
    for line in tail.splitlines()[1:]:
        name, _, rest = line.strip().partition("  ")
        seconds[name.strip()] = float(rest.split(" s")[0])
    for stage in ("synthetic set", "outside the folds", "the folds", "prepare", "build", "first epoch",
                  "other epochs", "select + test", "export"):
        assert seconds[stage] >= 0, (stage, tail)
    assert "3 folds" in tail and seconds["first epoch"] > 0 and seconds["export"] > 0
    fold_stages = sum(seconds[s] for s in ("prepare", "build", "first epoch", "other epochs", "select + test"))
    assert abs(fold_stages - seconds["the folds"]) <= 0.2, tail
