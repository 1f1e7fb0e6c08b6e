"""Reports as the papers give them (issue 13, finding 9).

MEGC 2019 reports UF1/UAR for the composite *and* each of CASME II, SAMM and
SMIC; holdout-database evaluation reports each direction on its own; a
composite whose size differs from the published one (442 clips, 68 subjects)
is flagged.
"""

import json

import numpy as np
import pandas as pd
import pytest

from kerasmer.evaluation import compute_metrics, summarize
from kerasmer.evaluation.metrics import metrics_by_group
from kerasmer.evaluation.protocols import check_published_counts, dataset_counts, get_protocol
from kerasmer.evaluation.report import write_report

from .test_report import NAMES, _fold, _run_dir


def _composite_folds():
    """Three LOSO folds of a composite, one subject from each dataset, with known predictions."""
    folds = []
    for name, y_true, y_pred in (("casme2_01", [0, 0, 1, 2], [0, 0, 1, 2]),   # perfect
                                 ("samm_006", [0, 1, 2], [1, 1, 1]),          # only "positive" right
                                 ("smic_s1", [0, 1, 1, 2], [0, 0, 1, 2])):
        f = _fold(name, y_true, y_pred)
        f.clip_subjects = [name] * len(y_true)
        f.clip_datasets = [name.split("_")[0]] * len(y_true)
        folds.append(f)
    return folds


def _published_counts():
    return {k: dict(v) for k, v in get_protocol("megc_composite").published.items()}


def test_published_megc_counts_are_protocol_data():
    published = get_protocol("megc_composite").published
    assert sum(v["clips"] for v in published.values()) == 442
    assert sum(v["subjects"] for v in published.values()) == 68
    assert published["smic"] == {"clips": 164, "subjects": 16}
    assert get_protocol("loso").published is None


def test_count_check_names_both_counts():
    counts = _published_counts()
    assert check_published_counts("megc_composite", counts) == []
    counts["samm"] = {"clips": 130, "subjects": 28}
    del counts["smic"]
    msgs = check_published_counts("megc_composite", counts)
    assert len(msgs) == 2
    assert "samm has 130 clips from 28 subjects" in msgs[0] and "133 clips from 28 subjects" in msgs[0]
    assert "smic has 0 clips from 0 subjects" in msgs[1] and "164 clips from 16 subjects" in msgs[1]
    assert check_published_counts("loso", counts) == [], "protocols without published sizes are not checked"


def test_dataset_counts_of_a_table():
    df = pd.DataFrame({"dataset": ["samm", "samm", "smic", "samm"],
                       "subject": ["samm_1", "samm_2", "smic_1", "samm_1"]})
    assert dataset_counts(df) == {"samm": {"clips": 3, "subjects": 2}, "smic": {"clips": 1, "subjects": 1}}


def test_metrics_by_group_equals_metrics_of_each_subset():
    y_true, y_pred = np.array([0, 1, 2, 0, 1]), np.array([0, 1, 1, 1, 1])
    groups = np.array(["a", "b", "a", "b", "b"])
    out = metrics_by_group(y_true, y_pred, groups, NAMES)
    assert list(out) == ["a", "b"]
    assert out["a"] == compute_metrics([0, 2], [0, 1], NAMES)
    assert out["b"]["uar"] == pytest.approx(compute_metrics([1, 0, 1], [1, 1, 1], NAMES)["uar"])
    with pytest.raises(ValueError, match="groups"):
        metrics_by_group(y_true, y_pred, groups[:2], NAMES)


def test_megc_composite_reports_each_dataset_and_warns_on_size(tmp_path):
    folds = _composite_folds()
    counts = _published_counts()
    counts["casme2"] = {"clips": 4, "subjects": 1}
    run = _run_dir(tmp_path / "megc", folds, protocol="megc_composite")
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "dataset_counts": counts}))
    md = write_report(run)
    m = json.loads((run / "metrics.json").read_text())
    assert list(m["per_dataset"]) == ["casme2", "samm", "smic"]
    for f in folds:
        ds = f.clip_datasets[0]
        assert m["per_dataset"][ds]["uf1"] == pytest.approx(f.metrics["uf1"])
        assert m["per_dataset"][ds]["uar"] == pytest.approx(f.metrics["uar"])
    assert m["per_dataset"]["casme2"]["uf1"] == 1.0 and m["per_dataset"]["samm"]["uf1"] < 0.5
    assert m["pooled"]["n"] == 11, "the composite's own score stays beside the datasets'"
    assert "| casme2 | 4 | 1.0000 | 1.0000 | 1.0000 |" in md and "| all (pooled) | 11 |" in md
    assert len(m["warnings"]) == 1 and "casme2 has 4 clips from 1 subjects" in m["warnings"][0]
    assert "> **WARNING**: protocol megc_composite: casme2 has 4 clips" in md
    result = summarize(folds, NAMES, protocol="megc_composite")
    table = result.fold_table()
    assert [line.split()[0] for line in table.splitlines()[4:8]] == ["pooled", "casme2", "samm", "smic"]
    assert result.per_dataset == m["per_dataset"]


def test_megc_report_without_size_mismatch_has_no_warning(tmp_path):
    run = _run_dir(tmp_path / "megc", _composite_folds(), protocol="megc_composite")
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "dataset_counts": _published_counts()}))
    md = write_report(run)
    assert json.loads((run / "metrics.json").read_text())["warnings"] == [] and "WARNING" not in md


def test_hde_reports_each_direction_and_no_pooled_score(tmp_path):
    a = _fold("casme2->samm", [0, 1, 2, 2], [0, 1, 2, 2])
    b = _fold("samm->casme2", [0, 1, 2], [1, 1, 1])
    run = _run_dir(tmp_path / "hde", [a, b], protocol="hde")
    md = write_report(run)
    m = json.loads((run / "metrics.json").read_text())
    assert m["pooled"] is None and m["per_dataset"] == {}
    assert list(m["directions"]) == ["casme2->samm", "samm->casme2"]
    assert m["directions"]["casme2->samm"]["uf1"] == 1.0
    assert m["directions"]["samm->casme2"]["uar"] == pytest.approx(1 / 3)
    assert "Pooled" not in md and "pooled)" not in md and "no pooled score" in md
    assert "| casme2->samm | 4 | 1.0000 | 1.0000 | 1.0000 |" in md
    for name in ("confusion_matrix_casme2_to_samm.png", "confusion_matrix_samm_to_casme2.png"):
        assert (run / name).stat().st_size > 0
    assert not (run / "confusion_matrix.png").exists()
    result = summarize([a, b], NAMES, protocol="hde")
    lines = result.fold_table().splitlines()
    assert result.pooled == {} and [line.split()[0] for line in lines[1:3]] == ["casme2->samm", "samm->casme2"]
    assert not any(line.split()[0] in ("pooled", "mean±std") for line in lines), "HDE has no pooled headline"
