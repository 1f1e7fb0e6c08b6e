"""The synthetic micro-expression set: CASME II layout, reader round trip, determinism, motion."""

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from kerasmer.data import COLUMNS, EXTRA_COLUMNS, EXPRESSION_AUS, dynamic_image, make_synthetic, read_dataset
from kerasmer.data.readers._common import frame_number

SMALL = dict(subjects=3, clips_per_class=2, fps=100, image_size=(64, 64))


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("syn") / "a", seed=3, **SMALL)
    return root, read_dataset("casme2", root)


def test_round_trip_columns_subjects_and_labels(small_set):
    root, df = small_set
    assert set(COLUMNS + EXTRA_COLUMNS) <= set(df.columns)
    assert len(df) == 3 * 3 * 2
    assert sorted(df["subject"].unique()) == ["01", "02", "03"]
    assert df["emotion"].value_counts().to_dict() == {"negative": 6, "positive": 6, "surprise": 6}
    aus = {e: "+".join(map(str, EXPRESSION_AUS[e])) for e in ("negative", "positive", "surprise")}
    assert all(df["action_units"] == df["emotion"].map(aus))
    assert (df["fps"] == 100).all() and not df["apex_missing"].any()
    for p in df["frame_paths"].explode():
        rel = Path(p).relative_to(root)
        assert rel.parts[0] == "CASME2-RAW" and rel.parts[1].startswith("sub") and rel.name.startswith("img")


def test_frames_numeric_order_and_annotation_consistency(small_set):
    _, df = small_set
    for _, row in df.iterrows():
        numbers = row["frame_numbers"]
        assert numbers == [frame_number(p) for p in row["frame_paths"]]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # contiguous, ascending
        assert numbers[0] > 0, "CASME II numbers frames from a non-zero start"
        assert numbers[0] < row["onset"] < row["apex"] < row["offset"] < numbers[-1]  # neutral frames around
        assert row["offset"] - row["onset"] <= 0.2 * row["fps"]  # at most 1/5 s


def test_spreadsheet_looks_like_casme2(small_set):
    root, _ = small_set
    sheets = list(root.glob("CASME2-coding-*.xlsx"))
    assert len(sheets) == 1
    rows = list(load_workbook(sheets[0]).active.iter_rows(values_only=True))
    header = rows[0]
    assert [h for h in header if h] == ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                                        "Action Units", "Estimated Emotion"]
    assert None in header  # the official file's unnamed blank column
    assert all(isinstance(r[0], int) for r in rows[1:])  # Subject as int, like the real file
    assert all(str(r[1]).startswith("EP") for r in rows[1:])


def _all_pixels(df):
    return [cv2.imread(p) for p in df["frame_paths"].explode()]


def test_deterministic_for_a_seed(small_set, tmp_path):
    root, df = small_set
    df2 = read_dataset("casme2", make_synthetic(tmp_path / "b", seed=3, **SMALL))
    cols = ["subject", "clip", "emotion", "onset", "apex", "offset", "action_units", "frame_numbers"]
    pd.testing.assert_frame_equal(df[cols], df2[cols])
    assert all(np.array_equal(a, b) for a, b in zip(_all_pixels(df), _all_pixels(df2)))
    sheet = lambda r: pd.read_excel(next(Path(r).glob("CASME2-coding-*.xlsx")))  # noqa: E731
    pd.testing.assert_frame_equal(sheet(root), sheet(tmp_path / "b"))
    other = read_dataset("casme2", make_synthetic(tmp_path / "c", seed=4, **SMALL))
    assert not np.array_equal(cv2.imread(other["frame_paths"][0][0]), cv2.imread(df["frame_paths"][0][0]))


def test_existing_folders(small_set, tmp_path):
    root, _ = small_set
    marker = root / "kerasmer_synthetic.json"
    stamp = marker.stat().st_mtime_ns
    assert make_synthetic(root, seed=3, **SMALL) == root  # same arguments: reused as is
    assert marker.stat().st_mtime_ns == stamp
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        make_synthetic(tmp_path, seed=0, subjects=1, clips_per_class=1)
    with pytest.raises(ValueError, match="classes"):
        make_synthetic(tmp_path / "x", classes=("negative", "boredom"))


def test_replacing_own_set_with_other_arguments(tmp_path):
    make_synthetic(tmp_path, subjects=2, clips_per_class=1, fps=50, image_size=(32, 32))
    df = read_dataset("casme2", make_synthetic(tmp_path, subjects=1, clips_per_class=1, fps=50,
                                               image_size=(32, 32), classes=("surprise",)))
    assert list(df["subject"]) == ["01"] and list(df["emotion"]) == ["surprise"]
    assert not (tmp_path / "CASME2-RAW" / "sub02").exists()
    assert json.loads((tmp_path / "kerasmer_synthetic.json").read_text())["classes"] == ["surprise"]


def _raw_dynamic_images(df):
    out = []
    for _, row in df.iterrows():
        frames = [cv2.imread(p).astype(np.float32) for p, n in zip(row["frame_paths"], row["frame_numbers"])
                  if row["onset"] <= n <= row["offset"]]
        out.append(dynamic_image(np.stack(frames), rescale=False))
    return out


def test_movement_shows_in_dynamic_image_beyond_jitter(tmp_path):
    """Same seed with and without the AU movement: only the movement differs."""
    args = dict(subjects=1, clips_per_class=1, fps=100, image_size=(64, 64), seed=7)
    still = read_dataset("casme2", make_synthetic(tmp_path / "still", amplitude=0.0, **args))
    moving = read_dataset("casme2", make_synthetic(tmp_path / "moving", **args))
    for emotion, d_still, d_move in zip(moving["emotion"], _raw_dynamic_images(still), _raw_dynamic_images(moving)):
        # the movement's response stands out above nearly all of the jitter and noise response
        diff = np.abs(d_move - d_still).sum(-1)
        background = np.percentile(np.abs(d_still).sum(-1), 99)
        assert diff.max() > 1.5 * background, (emotion, diff.max(), background)
        # and it is local: where it differs most is on the face, not at the border
        y, x = np.unravel_index(diff.argmax(), diff.shape)
        assert 8 <= y < 56 and 8 <= x < 56, (emotion, y, x)
