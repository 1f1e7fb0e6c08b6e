"""The synthetic long video: it holds what its CSV says, reproducibly, and refuses bad arguments."""

import numpy as np
import pandas as pd
import pytest

from kerasmer.data import EXPRESSION_AUS, make_synthetic_video
from kerasmer.data.synthetic.video import TRUTH_COLUMNS
from tests.video import read_video

@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = make_synthetic_video(tmp_path_factory.mktemp("long") / "s01.avi", seconds=7, fps=50, n_micro=2, blinks=1,
                                head_turns=1, macro=1, seed=3, classes=("negative", "positive"))
    return path, read_video(path), pd.read_csv(path.with_suffix(".csv"))

def test_video_holds_what_the_csv_says(video):
    path, frames, truth = video
    assert frames.shape == (350, 128, 128, 3)            # 7 s at 50 fps, read back with OpenCV
    assert tuple(truth.columns) == TRUTH_COLUMNS
    assert (truth["video"] == path.name).all() and (truth["fps"] == 50).all()
    assert sorted(truth["kind"]) == ["blink", "head_turn", "macro", "micro", "micro"]
    assert (truth["distractor"] == (truth["kind"] != "micro").astype(int)).all()
    assert ((0 <= truth["onset"]) & (truth["onset"] < truth["apex"]) & (truth["apex"] < truth["offset"])
            & (truth["offset"] < len(frames))).all()
    assert (truth["onset"].to_numpy()[1:] > truth["offset"].to_numpy()[:-1]).all()   # in time order, no overlap
    micro = truth[truth["kind"] == "micro"]
    assert set(micro["label"]) <= {"negative", "positive"}
    assert all(a == "+".join(map(str, EXPRESSION_AUS[lab])) for a, lab in zip(micro["aus"], micro["label"]))
    assert ((micro["offset"] - micro["onset"]) / 50 <= 0.5).all()   # micro-expressions last at most 0.5 s
    macro = truth[truth["kind"] == "macro"].iloc[0]
    assert (macro["offset"] - macro["onset"]) / 50 > 1.0

def test_the_face_moves_at_the_listed_events_and_rests_between(video):
    _, frames, truth = video
    f = frames.astype(np.float32)
    for _, ev in truth[truth["kind"].isin(["micro", "blink"])].iterrows():
        moved = np.abs(f[ev["apex"]] - f[ev["onset"]]).mean()
        rest = np.abs(f[ev["onset"]] - f[max(ev["onset"] - (ev["apex"] - ev["onset"]), 0)]).mean()
        assert moved > rest, f"{ev['kind']} at {ev['apex']}: apex differs from onset by {moved:.2f}, rest {rest:.2f}"

def test_frame_folder_and_same_seed_same_output(tmp_path):
    a = make_synthetic_video(tmp_path / "a", seconds=3, fps=20, n_micro=1, blinks=0, head_turns=1, macro=0, seed=7)
    b = make_synthetic_video(tmp_path / "b", seconds=3, fps=20, n_micro=1, blinks=0, head_turns=1, macro=0, seed=7)
    files = sorted(a.iterdir())
    assert [p.name for p in files][:2] == ["img000000.jpg", "img000001.jpg"] and len(files) == 60
    ta, tb = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(ta.drop(columns="video"), tb.drop(columns="video"))
    assert (files[30].read_bytes() == (b / files[30].name).read_bytes())
    c = make_synthetic_video(tmp_path / "c", seconds=3, fps=20, n_micro=1, blinks=0, head_turns=1, macro=0, seed=8)
    assert not pd.read_csv(tmp_path / "c.csv").drop(columns="video").equals(ta.drop(columns="video"))
    assert len(list(c.iterdir())) == 60

@pytest.mark.parametrize("kwargs, message", [
    (dict(seconds=2, n_micro=10), "do not fit in 2"),
    (dict(fps=0), "fps > 0"),
    (dict(classes=("joy",)), "classes must be"),
    (dict(amplitude=0), "amplitude > 0"),
    (dict(size=(16, 16)), "too small"),
])
def test_bad_arguments_are_refused_before_any_frame(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_synthetic_video(tmp_path / "v.avi", **{"seconds": 5, **kwargs})
    assert not list(tmp_path.iterdir())

def test_unknown_container_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"v\.mp4.*\.avi"):
        make_synthetic_video(tmp_path / "v.mp4", seconds=1)
