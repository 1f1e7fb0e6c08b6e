"""``kerasmer train --synthetic`` under the MEGC composite and HDE: synthetic CASME II, SAMM and SMIC-HS sets."""

import json

from kerasmer.cli.main import main

TINY = ["--model", "learnet", "--recipe", "learnet", "--epochs", "1", "--batch-size", "8", "--input-shape",
        "32,32,3", "--no-deterministic", "--no-baselines", "--subjects", "2", "--clips-per-class", "1",
        "--synthetic-option", "image_size=[32,32]"]


def test_megc_composite_on_synthetic_data_reports_each_dataset(tmp_path, capsys):
    out = tmp_path / "megc"
    # one fold per dataset keeps it short; every dataset's test subject is scored
    assert main(["train", "--synthetic", "--protocol", "megc_composite", "--folds", "casme2_01,samm_006,smic_s1",
                 *TINY, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["class_names"] == ["negative", "positive", "surprise"] and m["labels"] == "megc3"
    run = json.loads((out / "run.json").read_text())
    # megc3 keeps all three classes of every synthetic set: 2 subjects x 3 classes x 1 clip each
    assert run["dataset_counts"] == {n: {"clips": 6, "subjects": 2} for n in ("casme2", "samm", "smic")}
    assert list(m["per_dataset"]) == ["casme2", "samm", "smic"]
    printed = capsys.readouterr().out
    for name in ("casme2", "samm", "smic"):
        assert f"{name}: UF1 = {m['per_dataset'][name]['uf1']:.4f}" in printed
    for name in ("casme2", "samm", "smic"):
        assert (out / "synthetic_data" / name / "kerasmer_synthetic.json").is_file()


def test_hde_on_synthetic_data_trains_on_one_layout_and_tests_on_the_other(tmp_path, capsys):
    out = tmp_path / "hde"
    assert main(["train", "--synthetic", "--protocol", "hde", *TINY, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert [f["fold"] for f in m["folds"]] == ["casme2->samm", "samm->casme2"]
    assert m["pooled"] is None and m["class_names"] == ["negative", "positive", "surprise"]
    assert "samm->casme2: UF1 = " in capsys.readouterr().out
