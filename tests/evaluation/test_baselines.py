"""The trivial baselines: known answers, no leak from the test subject, one decode per frame, and the report.

The known-answer set: the apex frame shows the class as a bright band (band k for class k) under per-clip
noise, the onset frame equals the apex frame, so |apex - onset| is all zeros, and the offset frame is noise
(so the answers also pin which frames are read).  Then logistic
regression on the apex frame is perfect (UF1 1.0), and on the zero difference it can only learn the
class prior, so it predicts the majority class, as ``majority`` does.  With 3 clips of ``a``, 2 of ``b``
and 1 of ``c`` per subject, predicting ``a`` everywhere gives recall (1, 0, 0) and F1 (2/3, 0, 0):
UF1 = 2/9, UAR = 1/3.
"""

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from kerasmer.data.pipeline.inputs import DECODE_STATS
from kerasmer.evaluation.baselines import (
    BASELINES, read_baselines, records_of, run_baselines, score_records, write_baselines,
)
from kerasmer.evaluation.protocols import make_folds
from kerasmer.evaluation.report import write_report
from tests.evaluation.test_report import _fold, _run_dir

CLASSES = ["a", "b", "c"]
PER_SUBJECT = {"a": 3, "b": 2, "c": 1}


def _banded_set(root, subjects=4, seed=0) -> pd.DataFrame:
    """Clips whose apex frame shows its class as band k of three (onset = apex: no movement; offset: noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(subjects):
        for label, count in PER_SUBJECT.items():
            for k in range(count):
                clip = f"{label}{k}"
                folder = root / f"s{s}" / clip
                folder.mkdir(parents=True)
                img = rng.integers(40, 90, (24, 24)).astype(np.uint8) + np.uint8(10 * s)  # per-subject lighting
                band = CLASSES.index(label)
                img[band * 8:(band + 1) * 8] += 120
                offset = rng.integers(40, 90, (24, 24)).astype(np.uint8)  # no band: reading it would be wrong
                paths = []
                for n, frame in ((1, img), (2, img), (3, offset)):
                    paths.append(str(folder / f"img{n}.png"))
                    cv2.imwrite(paths[-1], cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
                rows.append(dict(dataset="casme2", subject=f"s{s}", clip=clip, emotion=label, onset=1, apex=2,
                                 offset=3, frame_paths=paths, frame_numbers=[1, 2, 3]))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def banded(tmp_path_factory):
    return _banded_set(tmp_path_factory.mktemp("banded"))


def test_known_answers_on_a_set_whose_apex_frame_is_the_label(banded):
    folds = make_folds("loso", banded)
    before = DECODE_STATS["frames"]
    scores = run_baselines(banded, folds, label_column="emotion", class_names=CLASSES, size=(12, 12))
    # features are cached per clip: onset and apex decoded once each, however many folds train on the clip
    assert DECODE_STATS["frames"] - before == 2 * len(banded)
    assert list(scores) == list(BASELINES)
    assert scores["apex_frame_lr"]["uf1"] == pytest.approx(1.0)
    for name in ("majority", "apex_onset_diff_lr"):
        assert scores[name]["uf1"] == pytest.approx(2 / 9) and scores[name]["uar"] == pytest.approx(1 / 3)
        assert set(scores[name]["y_pred"]) == {0}
    assert scores["majority"]["n"] == len(banded) and sorted(scores["majority"]["folds"]) == ["s0", "s1", "s2", "s3"]
    assert sorted(scores["majority"]["clips"]) == sorted(f"{s}/{c}" for s, c in zip(banded["subject"], banded["clip"]))


def test_the_test_subject_never_shapes_the_predictions(banded):
    """Relabelling (or reversing the frames of) the held-out subject changes no prediction for it."""
    fold = next(f for f in make_folds("loso", banded) if f.name == "s2")
    base = run_baselines(banded, [fold], label_column="emotion", class_names=CLASSES, size=(12, 12))
    changed = banded.copy()
    test = changed.index[changed.subject == "s2"]
    changed.loc[test, "emotion"] = "c"  # a label leak would move the majority and the regressions
    changed.loc[test, "frame_paths"] = changed.loc[test, "frame_paths"].map(lambda p: p[::-1])
    again = run_baselines(changed, [fold], label_column="emotion", class_names=CLASSES, size=(12, 12))
    for name in BASELINES:
        assert again[name]["y_pred"] == base[name]["y_pred"], name
    assert again["majority"]["y_true"] == [2] * len(test)


def test_validation_clips_are_trained_on(banded):
    """A fold whose training part is empty still learns from its validation subjects (training subjects too)."""
    fold = next(f for f in make_folds("loso", banded) if f.name == "s0")
    moved = type(fold)(fold.name, fold.train[:0], np.concatenate([fold.train, fold.val]), fold.test)
    a = run_baselines(banded, [fold], label_column="emotion", class_names=CLASSES, size=(12, 12))
    b = run_baselines(banded, [moved], label_column="emotion", class_names=CLASSES, size=(12, 12))
    assert b["apex_frame_lr"]["y_pred"] == a["apex_frame_lr"]["y_pred"] and b["apex_frame_lr"]["uf1"] == 1.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(names=("majority", "knn")), "names must be among"),
    (dict(label_column="label"), "label_column 'label' is not a column"),
    (dict(class_names=["a", "b"]), r"label\(s\) \['c'\]"),
    (dict(size=(0, 12)), "size must be"),
])
def test_bad_arguments_are_named_before_any_decode(banded, kwargs, match):
    before = DECODE_STATS["frames"]
    options = {"label_column": "emotion", "class_names": CLASSES, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_baselines(banded, make_folds("loso", banded), **options)
    assert DECODE_STATS["frames"] == before


def test_stored_records_round_trip_and_pool_by_fold(banded, tmp_path):
    scores = run_baselines(banded, make_folds("loso", banded), label_column="emotion", class_names=CLASSES,
                           size=(12, 12))
    write_baselines(tmp_path, records_of(scores), size=(12, 12))
    records = read_baselines(tmp_path)
    assert sorted(records) == ["s0", "s1", "s2", "s3"]
    again = score_records(records, CLASSES)
    for name in BASELINES:
        assert again[name]["y_pred"] == scores[name]["y_pred"] and again[name]["uf1"] == scores[name]["uf1"]
    assert score_records(records, CLASSES, ["s1"])["majority"]["n"] == 6
    (tmp_path / "baselines.json").write_text("{not json")
    with pytest.raises(ValueError, match="baselines.json: damaged baselines file"):
        read_baselines(tmp_path)


def _records(fold, y_true, predictions):
    return {fold: {"clips": [f"{fold}/c{i}" for i in range(len(y_true))], "y_true": y_true, "y_pred": predictions}}


def test_report_shows_the_floor_beside_the_model_and_merges_jobs(tmp_path):
    """metrics.json and report.md carry the baselines pooled over exactly the reported folds; fan-out jobs merge."""
    names = ["negative", "positive", "surprise"]
    job1 = _run_dir(tmp_path / "job1", [_fold("01", [0, 0, 1, 2], [0, 0, 1, 1])])
    job2 = _run_dir(tmp_path / "job2", [_fold("02", [1, 2], [1, 2])])
    write_baselines(job1, _records("01", [0, 0, 1, 2], {"majority": [0, 0, 0, 0], "apex_frame_lr": [0, 1, 1, 2]}),
                    size=(32, 32))
    write_baselines(job2, _records("02", [1, 2], {"majority": [1, 1], "apex_frame_lr": [1, 2]}), size=(32, 32))
    md = write_report(tmp_path / "merged", sources=[job1, job2])
    m = json.loads((tmp_path / "merged" / "metrics.json").read_text())
    b = m["baselines"]
    assert b["folds_covered"] == b["folds_reported"] == 2
    # majority pooled: true [0,0,1,2,1,2], predicted [0,0,0,0,1,1]: recall (1, 1/2, 0) -> UAR 1/2
    assert b["scores"]["majority"]["n"] == 6 and b["scores"]["majority"]["uar"] == pytest.approx(0.5)
    assert b["scores"]["apex_frame_lr"]["folds"]["02"]["uf1"] == 1.0
    table = md[md.index("Against trivial baselines"):]
    assert f"| learnet | pooled | {m['pooled']['uf1']:.4f} | {m['pooled']['uar']:.4f} |" in table
    assert "| majority | pooled | " in table and "| 0.5000 |" in table.splitlines()[5]
    assert "cover" not in table.split("## ")[0]  # every reported fold has its baselines
    # a job without baselines merged in: said so, and the floor is over the covered folds only
    job3 = _run_dir(tmp_path / "job3", [_fold("03", [0], [0])])
    md = write_report(tmp_path / "merged3", sources=[job1, job2, job3])
    assert "The baselines cover 2 of the 3 reported folds" in md


def test_hde_report_lists_the_floor_per_direction(tmp_path):
    run = _run_dir(tmp_path / "hde", [_fold("casme2->samm", [0, 1, 2], [0, 1, 1]),
                                      _fold("samm->casme2", [0, 1], [0, 0])], protocol="hde")
    write_baselines(run, {**_records("casme2->samm", [0, 1, 2], {"majority": [0, 0, 0]}),
                          **_records("samm->casme2", [0, 1], {"majority": [1, 1]})}, size=(32, 32))
    md = write_report(run)
    assert "| majority | casme2->samm | 0.1667 | 0.3333 |" in md
    assert "| majority | samm->casme2 | 0.3333 | 0.5000 |" in md
    assert "| majority | pooled |" not in md
