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
