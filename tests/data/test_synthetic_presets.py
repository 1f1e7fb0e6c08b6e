"""Difficulty presets, movement tied to amplitude, and the SAMM / SMIC-HS synthetic layouts (issue 12)."""

import json

import cv2
import numpy as np
import pytest
from openpyxl import load_workbook

from kerasmer.data import composite, read_dataset
from kerasmer.data.synthetic import PRESETS, make_synthetic, make_synthetic_sets, resolve_settings
from kerasmer.data.synthetic.generate import _au_displacements, _intensity, _render, _subject_params
from kerasmer.data.synthetic.render import KNOWN_AUS

TINY = dict(subjects=3, clips_per_class=1, image_size=(32, 32))


def test_presets_are_tables_of_keywords_and_bad_values_are_named():
    demo, bench = resolve_settings("demo"), resolve_settings("casme2-like")
    assert demo["classes"] == ["negative", "positive", "surprise"] and demo["amplitude"] == 3.5
    assert bench["classes"] == ["others", "disgust", "happiness", "repression", "surprise"]
    assert bench["class_weights"] == [99, 63, 33, 27, 25] and 20 <= bench["subjects"] <= 26
    assert bench["duration"] == [0.1, 0.5] and bench["fps"] == 200 and bench["label_noise"] > 0
    assert set(PRESETS["demo"]) == set(PRESETS["casme2-like"])  # every property is a keyword of both
    assert resolve_settings("casme2-like", amplitude=0.0)["amplitude"] == 0.0
    with pytest.raises(ValueError, match="unknown preset 'hard'"):
        make_synthetic("/nonexistent/x", "hard")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['amplitud'\]"):
        resolve_settings(amplitud=1)
    with pytest.raises(ValueError, match=r"label_noise must be a number in \[0, 1\), got 1.5"):
        resolve_settings(label_noise=1.5)
    with pytest.raises(ValueError, match="class_weights must be 3 positive numbers"):
        resolve_settings(class_weights=(1, 2))
    with pytest.raises(ValueError, match="the smic layout is read at 100 fps; got fps=200"):
        resolve_settings(layout="smic", fps=200)
    with pytest.raises(ValueError, match="classes must be distinct names from .* in the smic layout"):
        resolve_settings(layout="smic", classes=("happiness",))


@pytest.mark.parametrize("au", KNOWN_AUS)
def test_at_amplitude_zero_nothing_moves_and_each_au_shows_when_it_moves(au):
    """The issue's bug: creases switched on at full strength whatever the amplitude."""
    p = _subject_params(np.random.default_rng(5), (64, 64))
    pose = (0.3, -0.2, 0.5, 1.0)

    def frame(amp, k):
        return _render(p, _au_displacements((au,), amp, scale=p["s"]), k, pose, np.random.default_rng(1))

    neutral = frame(0.0, 0.0)
    assert np.array_equal(frame(0.0, 1.0), neutral), f"AU{au} changes the face at amplitude 0"
    moved = np.abs(frame(2.0, 1.0).astype(int) - neutral).sum(-1)
    assert moved.max() >= 20, f"AU{au} barely shows at 2 px ({moved.max()})"


def test_creases_scale_with_amplitude():
    one, two = _au_displacements((4, 9, 12), 1.0), _au_displacements((4, 9, 12), 2.0)
    for key in ("glabella", "crease", "fold"):
        assert one[key] > 0 and two[key] == pytest.approx(2 * one[key])
    assert _au_displacements((4, 9, 12), 1.0, crease=0.0)["glabella"] == 0.0
    k = _intensity(12, 2, 5, 9)
    assert k[0] == k[2] == 0 and k[5] == 1 and k[9:].sum() == 0


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("bench") / "b", "casme2-like", subjects=10, image_size=(32, 32),
                          fps=100, seed=2)
    return root, read_dataset("casme2", root)


def test_casme2_like_is_imbalanced_with_missing_classes_and_varied_aus(bench):
    root, df = bench
    counts = df["emotion"].value_counts()
    assert len(df) == round(247 / 26 * 10) and counts.index[0] == "others"
    assert counts["others"] > counts["disgust"] > counts["happiness"] >= counts["surprise"]
    per_subject = df.groupby("subject")["emotion"].nunique()
    assert (per_subject < 5).any(), "some subjects lack some classes"
    assert df.groupby("subject").size().nunique() > 1, "subjects show different numbers of clips"
    assert df.groupby("emotion")["action_units"].nunique().min() >= 2, "AUs vary within a class"
    span = (df["offset"] - df["onset"]) / df["fps"]
    assert span.between(0.1 - 1e-9, 0.5 + 1e-9).all() and span.max() > 0.25
    marker = json.loads((root / "kerasmer_synthetic.json").read_text())
    assert marker["preset"] == "casme2-like" and marker["layout"] == "casme2" and marker["seed"] == 2
    assert set(resolve_settings()) <= set(marker)  # every setting is recorded: a set is written once per settings
    assert df["clip"].str.fullmatch(r"EP\d\d_\d\d").all()  # CASME II's naming
    assert df["fixes"].eq("").all(), "no synthetic clip is one the real release's fix table corrects"


def test_marker_reuses_the_same_settings_and_rewrites_on_any_change(bench, tmp_path):
    args = dict(subjects=2, clips_per_class=1, image_size=(32, 32), fps=50)
    root = make_synthetic(tmp_path / "s", "casme2-like", **args)
    stamp = (root / "kerasmer_synthetic.json").stat().st_mtime_ns
    assert make_synthetic(root, "casme2-like", workers=1, **args) == root  # workers do not change the set
    assert (root / "kerasmer_synthetic.json").stat().st_mtime_ns == stamp
    make_synthetic(root, "casme2-like", label_noise=0.2, **args)
    assert json.loads((root / "kerasmer_synthetic.json").read_text())["label_noise"] == 0.2


def test_output_does_not_depend_on_the_number_of_writer_threads(tmp_path):
    args = dict(subjects=2, clips_per_class=1, image_size=(32, 32), fps=50, seed=4)
    a = read_dataset("casme2", make_synthetic(tmp_path / "a", "casme2-like", workers=1, **args))
    b = read_dataset("casme2", make_synthetic(tmp_path / "b", "casme2-like", workers=3, **args))
    assert list(a["clip"]) == list(b["clip"])
    for pa, pb in zip(a["frame_paths"].explode(), b["frame_paths"].explode()):
        assert np.array_equal(cv2.imread(pa), cv2.imread(pb))


def test_samm_layout_is_read_by_the_samm_reader(tmp_path):
    root = make_synthetic(tmp_path / "samm", layout="samm", **TINY)
    df = read_dataset("samm", root)
    assert sorted(df["subject"].unique()) == ["006", "007", "008"] and (df["fps"] == 200).all()
    assert set(df["emotion"]) == {"anger", "happiness", "surprise"} and not df["apex_missing"].any()
    assert all(c.startswith(s + "_") for s, c in zip(df["subject"], df["clip"]))
    frame = cv2.imread(df["frame_paths"][0][0], cv2.IMREAD_UNCHANGED)
    assert frame.ndim == 2, "SAMM's frames are grey"
    sheet = next(root.glob("SAMM*Micro_FACS_Codes*.xlsx"))
    rows = list(load_workbook(sheet).active.iter_rows(values_only=True))
    header = next(i for i, r in enumerate(rows) if r[0] == "Subject")
    assert header >= 2 and rows[header][:4] == ("Subject", "Filename", "Inducement Code", "Onset Frame")
    assert {r[10] for r in rows[header + 1:]} == {"Anger", "Happiness", "Surprise"}  # SAMM's capitalised labels


def test_smic_layout_is_read_by_the_smic_reader(tmp_path):
    root = make_synthetic(tmp_path / "smic", layout="smic", **TINY)
    df = read_dataset("smic", root)
    assert sorted(df["subject"].unique()) == ["s1", "s2", "s3"] and (df["fps"] == 100).all()
    assert set(df["emotion"]) == {"negative", "positive", "surprise"} and df["apex_missing"].all()
    for _, row in df.iterrows():
        assert f"HS/{row['subject']}/micro/{row['emotion']}/{row['clip']}/image" in row["frame_paths"][0]


def test_the_three_megc_sets_keep_all_three_classes_under_megc3(tmp_path):
    roots = make_synthetic_sets(tmp_path, ["casme2", "samm", "smic"], own_vocabulary=True, **TINY)
    assert {n: r.name for n, r in roots.items()} == {"casme2": "casme2", "samm": "samm", "smic": "smic"}
    df, _ = composite(list(roots), roots, scheme="megc3")
    for name, part in df.groupby("dataset"):
        assert sorted(part["label"].unique()) == ["negative", "positive", "surprise"], name
    assert df["subject"].nunique() == 9
    first = {n: cv2.imread(df[df["dataset"] == n]["frame_paths"].iloc[0][0], cv2.IMREAD_GRAYSCALE) for n in roots}
    assert not np.array_equal(first["casme2"], first["samm"]), "each layout draws its own subjects"
