"""``kerasmer train`` runs every protocol; ``kerasmer evaluate`` recomputes and merges; bad input is explained."""

import json

import numpy as np
import pandas as pd
import pytest

import kerasmer.data
from kerasmer.cli.main import main
from kerasmer.evaluation import compute_metrics
from tests.data.fixtures import write_casme2_fixture, write_samm_fixture, write_smic_fixture

FAST = ["--model", "learnet", "--recipe", "learnet", "--epochs", "1", "--batch-size", "8", "--input-shape",
        "32,32,3", "--no-deterministic"]


def _clips(subjects, emotions, **extra):
    return [dict(subject=s, clip=f"{s}_{e}_{k}", emotion=e, onset=1, apex=2, offset=3, **extra)
            for s in subjects for e in emotions for k in range(2)]


@pytest.fixture(scope="module")
def megc_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("megc")
    casme2, _ = write_casme2_fixture(base / "CASME2", _clips(["01", "02", "03"], ["disgust", "happiness", "surprise"]))
    samm, _ = write_samm_fixture(base / "SAMM", _clips(["006", "007", "008"], ["anger", "happiness", "surprise"]))
    short = {"negative": "ne", "positive": "po", "surprise": "sur"}
    smic, _ = write_smic_fixture(base / "SMIC", [
        dict(subject=s, clip=f"{s}_{short[e]}_{k + 1:02d}", emotion=e, onset=1, offset=3)
        for s in ("s1", "s2", "s3") for e in short for k in range(2)])
    return {"casme2": casme2, "samm": samm, "smic": smic}


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def test_megc_composite_and_hde_on_fixtures(megc_roots, tmp_path, capsys):
    data = [a for name, root in megc_roots.items() for a in ("--data", f"{name}={root}")]
    out = tmp_path / "megc"
    assert main(["train", *data, "--protocol", "megc_composite", "--folds", "casme2_01,smic_s2", *FAST,
                 "--out", str(out)]) == 0
    m = _metrics(out)
    assert m["class_names"] == ["negative", "positive", "surprise"] and m["labels"] == "megc3"
    assert [f["fold"] for f in m["folds"]] == ["casme2_01", "smic_s2"]
    run = json.loads((out / "run.json").read_text())
    assert run["subjects"] == 9 and len(run["folds"]) == 9 and run["clips"] == 54
    assert m["missing_folds"] == [], "only the requested folds were planned in this job"
    # MEGC 2019 reports each dataset beside the composite; these fixtures are far smaller than the published set.
    assert list(m["per_dataset"]) == ["casme2", "smic"] and m["per_dataset"]["smic"]["n"] == 6
    assert run["dataset_counts"]["samm"] == {"clips": 18, "subjects": 3}
    printed = capsys.readouterr().out
    assert "WARNING: protocol megc_composite: samm has 18 clips from 3 subjects; the published composite has 133 " \
           "clips from 28 subjects" in printed
    assert f"casme2: UF1 = {m['per_dataset']['casme2']['uf1']:.4f}" in printed
    assert f"smic: UF1 = {m['per_dataset']['smic']['uf1']:.4f}" in printed
    assert len(m["warnings"]) == 3 and "> **WARNING**: protocol megc_composite: samm has 18 clips" in \
        (out / "report.md").read_text()

    out = tmp_path / "hde"
    assert main(["train", "--data", f"casme2={megc_roots['casme2']}", "--data", f"samm={megc_roots['samm']}",
                 "--protocol", "hde", "--labels", "megc3", *FAST, "--out", str(out)]) == 0
    m = _metrics(out)
    assert [f["fold"] for f in m["folds"]] == ["casme2->samm", "samm->casme2"]
    assert [f["test_subjects"] for f in m["folds"]] == [["samm_006", "samm_007", "samm_008"],
                                                        ["casme2_01", "casme2_02", "casme2_03"]]
    # Each direction is its own result: no pooled score, one confusion matrix per direction.
    assert m["pooled"] is None and list(m["directions"]) == ["casme2->samm", "samm->casme2"]
    printed = capsys.readouterr().out
    assert "pooled UF1" not in printed
    assert f"samm->casme2: UF1 = {m['directions']['samm->casme2']['uf1']:.4f}" in printed
    for name in ("metrics.json", "predictions.csv", "report.md", "confusion_matrix_casme2_to_samm.png",
                 "confusion_matrix_samm_to_casme2.png", "training_curves.png"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").glob("*/events.out.tfevents.*"))


def test_kfold_split_and_report_files(synthetic_root, tmp_path):
    data = ["--data", f"casme2={synthetic_root}"]
    out = tmp_path / "kfold"
    assert main(["train", *data, "--protocol", "kfold", "--n-splits", "2", *FAST, "--save-models",
                 "--out", str(out)]) == 0
    m = _metrics(out)
    assert [f["fold"] for f in m["folds"]] == ["k1", "k2"]
    # --save-models keeps each fold's selected model where kerasmer explain / predict look, and nothing half-written
    for fold in ("k1", "k2"):
        assert (out / "folds" / fold / "model.keras").stat().st_size > 0
    assert not list(out.rglob(".tmp-*"))
    assert not set(m["folds"][0]["test_subjects"]) & set(m["folds"][1]["test_subjects"])
    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns[:6]) == ["fold", "subject", "clip", "true", "pred", "selected_epoch"]
    assert len(preds) == m["pooled"]["n"] == 24
    names = m["class_names"]
    expect = compute_metrics([names.index(v) for v in preds["true"]], [names.index(v) for v in preds["pred"]], names)
    assert m["pooled"]["uf1"] == pytest.approx(expect["uf1"])
    assert "mean" in m["across_folds"]["uf1"] and "not the pooled" in m["across_folds"]["label"]

    out = tmp_path / "split"
    assert main(["train", *data, "--protocol", "split", *FAST, "--out", str(out)]) == 0
    first = (out / "report.md").read_text().splitlines()[0]
    assert first.startswith("**SUBJECT-DEPENDENT")


def test_fan_out_folds_then_merge_with_evaluate(synthetic_root, tmp_path, capsys):
    data = ["--data", f"casme2={synthetic_root}"]
    for fold in ("01", "02"):
        assert main(["train", *data, *FAST, "--folds", fold, "--out", str(tmp_path / f"job{fold}")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "job01"), str(tmp_path / "job02"), "--out", str(tmp_path / "all")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Subject-independent evaluation") and "| 01 |" in printed and "| 02 |" in printed
    m = _metrics(tmp_path / "all")
    assert [f["fold"] for f in m["folds"]] == ["01", "02"] and m["pooled"]["n"] == 12
    jobs = [_metrics(tmp_path / f"job{f}") for f in ("01", "02")]
    cm = np.add(jobs[0]["pooled"]["confusion_matrix"], jobs[1]["pooled"]["confusion_matrix"])
    assert m["pooled"]["confusion_matrix"] == cm.tolist()
    # evaluate on one run directory recomputes the same report it wrote
    before = (tmp_path / "job01" / "report.md").read_text()
    assert main(["evaluate", str(tmp_path / "job01")]) == 0
    assert (tmp_path / "job01" / "report.md").read_text() == before
    with pytest.raises(SystemExit, match="fold '01' is in both"):
        main(["evaluate", str(tmp_path / "job01"), str(tmp_path / "job01"), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="needs --out"):
        main(["evaluate", str(tmp_path / "job01"), str(tmp_path / "job02")])


def test_nan_loss_stops_that_fold_only(synthetic_root, tmp_path, monkeypatch, capsys):
    real = kerasmer.data.make_dataset
    calls = []

    def poisoned(df, **kw):  # the first training set built is fold 01's (1 epoch): poison its labels
        ds = real(df, **kw)
        if kw.get("training"):
            calls.append(1)
            if len(calls) == 1:
                ds = ds.map(lambda x, y: (x, y * float("nan")))
        return ds

    monkeypatch.setattr(kerasmer.data, "make_dataset", poisoned)
    out = tmp_path / "nan"
    assert main(["train", "--data", f"casme2={synthetic_root}", *FAST, "--folds", "01,02", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fold 01 FAILED: fold 01: training loss became nan in epoch 1" in printed
    m = _metrics(out)
    assert [f["fold"] for f in m["folds"]] == ["02"] and list(m["failed_folds"]) == ["01"]
    assert "## Failed folds" in (out / "report.md").read_text()
    assert (out / "folds" / "01" / "failed.json").is_file()


@pytest.mark.parametrize("flags, match", [
    (["--recipe", "larnett"], "Unknown recipe 'larnett'"),
    (["--protocol", "holdout"], "unknown protocol 'holdout'"),
    (["--model", "lernet"], "Unknown model 'lernet'"),
    (["--folds", "99"], r"no fold named \['99'\]"),
    (["--labels", "casme2_5class"], "leaves class"),
    (["--data-option", "sampler_typo=uniform"], "unknown option"),
])
def test_bad_input_is_explained(synthetic_root, tmp_path, flags, match):
    with pytest.raises(SystemExit, match=match):
        main(["train", "--data", f"casme2={synthetic_root}", *FAST, *flags, "--out", str(tmp_path / "bad")])


def test_flags_override_the_config_file(tmp_path):
    from kerasmer.cli.main import build_parser
    from kerasmer.cli.train import config_from_args

    (tmp_path / "run.yaml").write_text("model: learnet\nrecipe: larnet\nrecipe_overrides: {batch_size: 16}\n"
                                       "data: {casme2: /data/CASME2}\nseed: 3\n")
    args = build_parser().parse_args(["train", "--config", str(tmp_path / "run.yaml"), "--set", "weight_decay=1e-3",
                                      "--iterations", "500", "--folds", "01, 07", "--freeze", "conv*",
                                      "--input-shape", "64,64,3", "--out", str(tmp_path / "o")])
    cfg = config_from_args(args)
    assert cfg.recipe_overrides == {"batch_size": 16, "weight_decay": 1e-3, "iterations": 500}
    assert (cfg.seed, cfg.folds, cfg.freeze, cfg.input_shape) == (3, ["01", "07"], ["conv*"], [64, 64, 3])
    assert cfg.data == {"casme2": "/data/CASME2"} and cfg.output_dir == str(tmp_path / "o")
    with pytest.raises(SystemExit, match="--data expects NAME=VALUE"):
        config_from_args(build_parser().parse_args(["train", "--data", "casme2"]))


def test_data_options_reach_the_data_layer(synthetic_root, tmp_path):
    """--data-option cache_dir/balance are recorded in the config and used: the cache is filled once."""
    cache = tmp_path / "cache"
    out = tmp_path / "opts"
    assert main(["train", "--data", f"casme2={synthetic_root}", *FAST, "--folds", "01,02",
                 "--data-option", f"cache_dir={cache}", "--data-option", "balance=true", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data_options"] == {"cache_dir": str(cache), "balance": True}
    shards = list(cache.rglob("*.npy"))
    assert len(shards) == 24, "every clip preprocessed once, then reused by the second fold"
