"""Apex spotting on the synthetic set, resolve_apex's choices, and clip-span validation errors."""

import cv2
import numpy as np
import pandas as pd
import pytest

from kerasmer.data.preprocess.apex import clip_span, resolve_apex, smooth_curve, spot_apex
from kerasmer.data.readers import read_dataset
from kerasmer.data.schema import AnnotationError
from kerasmer.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def synthetic_df(tmp_path_factory):
    # 3 subjects x 2 clips x 3 classes = 18 clips at 200 fps, each with a known true apex
    root = make_synthetic(tmp_path_factory.mktemp("syn_apex"), subjects=3, clips_per_class=2, seed=0)
    return read_dataset("casme2", root)


def test_spotting_finds_true_apex_within_two_frames(synthetic_df):
    errors = []
    for _, row in synthetic_df.iterrows():
        errors.append(resolve_apex(row, "spotted") - resolve_apex(row, "annotated"))
    errors = np.abs(np.array(errors))
    assert len(errors) == 18
    assert np.mean(errors <= 2) >= 0.9, f"apex errors (frames): {errors.tolist()}"


def test_annotated_and_middle_positions(synthetic_df):
    row = synthetic_df.iloc[0]
    span = clip_span(row)
    numbers = list(row["frame_numbers"])
    assert numbers[span.start] == row["onset"] and numbers[span.stop] == row["offset"]
    assert numbers[span.apex] == row["apex"]
    assert resolve_apex(row, "annotated") == row["apex"] - row["onset"]  # consecutive frame numbers
    assert resolve_apex(row, "middle") == (row["offset"] - row["onset"]) // 2 or \
        resolve_apex(row, "middle") == (row["offset"] - row["onset"] + 1) // 2
    with pytest.raises(ValueError, match="apex must be one of"):
        resolve_apex(row, "peak")


def _textured(seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.uniform(0, 255, (16, 16)).astype(np.float32), (64, 64), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0, 255).astype(np.uint8)


def _moving_patch(amounts):
    """Frames whose central patch is shifted right by ``amounts[t]`` pixels on a static background."""
    base, patch_src = _textured(0), _textured(1)
    frames = []
    for a in amounts:
        f = base.copy()
        m = np.float32([[1, 0, a], [0, 1, 0]])
        f[20:44, 20:44] = cv2.warpAffine(patch_src, m, (64, 64), borderMode=cv2.BORDER_REFLECT)[20:44, 20:44]
        frames.append(f)
    return np.stack(frames)


@pytest.mark.parametrize("peak", [19, 8, 1])
def test_spot_apex_inside_and_at_the_last_frame(peak):
    t = np.arange(20)
    amounts = 3.0 * np.exp(-(((t - peak) / 4.0) ** 2)) * (t > 0)  # onset (frame 0) at rest
    index, curve = spot_apex(_moving_patch(amounts), smooth=1.0, return_curve=True)
    assert curve.shape == (20,)
    assert abs(index - peak) <= 1, curve.round(2).tolist()


def test_spot_apex_on_one_or_two_frames():
    assert spot_apex(_moving_patch([0.0])) == 0  # a one-frame clip: its only frame
    assert spot_apex(_moving_patch([0.0, 2.0])) == 1
    with pytest.raises(ValueError, match="clip c1: frames must be a non-empty clip"):
        spot_apex(np.zeros((0, 8, 8), np.uint8), clip_id="c1")


def test_smooth_curve_is_a_centred_gaussian():
    c = np.array([0, 0, 0, 3, 0, 0, 0], np.float32)
    out = smooth_curve(c, 1.0)
    assert out.argmax() == 3 and np.isclose(out.sum(), 3.0, atol=1e-3)  # centred, mass kept inside
    assert np.allclose(out, out[::-1])  # symmetric input stays symmetric
    assert np.allclose(smooth_curve(c, 0), c)
    assert np.allclose(smooth_curve(np.full(5, 2.0), 2.0), 2.0)  # edges replicate, no droop
    with pytest.raises(ValueError, match="smooth"):
        spot_apex(np.zeros((3, 8, 8), np.uint8), smooth=-1)


def _row(**changes):
    row = {"dataset": "casme2", "subject": "07", "clip": "EP03_02", "onset": 10, "apex": 14, "offset": 20,
           "frame_paths": [f"/d/sub07/EP03_02/img{i}.jpg" for i in range(8, 23)],
           "frame_numbers": list(range(8, 23)), "fps": 200.0, "apex_missing": False,
           "source": "/d/CASME2-coding.xlsx:row 12"}
    row.update(changes)
    return pd.Series(row)


def test_clip_span_maps_numbers_to_positions():
    span = clip_span(_row())
    assert span == (2, 6, 12) and span.length == 11
    numbers = [8, 9, 11, 12, 15, 20, 25]
    gap = _row(frame_paths=[f"/x/img{i}.jpg" for i in numbers], frame_numbers=numbers)
    assert clip_span(gap) == (2, 4, 5)  # onset 10 -> first frame inside (11); apex 14 -> nearest (15)


@pytest.mark.parametrize("changes,message", [
    ({"frame_paths": [], "frame_numbers": []}, "zero-length clip: it has no frame files"),
    ({"offset": 10, "apex": 10}, "zero-length clip: offset frame 10 is not after onset frame 10"),
    ({"onset": 30, "apex": 31, "offset": 40}, "zero-length clip: no frame files numbered 30..40"),
    ({"apex": 25}, "apex frame 25 lies outside onset..offset"),
    ({"apex": 3}, "apex frame 3 lies outside onset..offset"),
])
def test_bad_spans_are_errors_naming_the_clip(changes, message):
    with pytest.raises(AnnotationError, match=message) as info:
        clip_span(_row(**changes))
    text = str(info.value)
    assert "casme2/07/EP03_02" in text and "CASME2-coding.xlsx" in text and "row 12" in text


def test_missing_apex_needs_spotting_or_middle():
    row = _row(apex=pd.NA, apex_missing=True)
    assert clip_span(row).apex is None
    with pytest.raises(AnnotationError, match="casme2/07/EP03_02.*apex='spotted'"):
        resolve_apex(row, "annotated")
    assert resolve_apex(row, "middle") == 5
    with pytest.raises(ValueError, match="casme2/07/EP03_02.*does not exist"):
        resolve_apex(row, "spotted")  # the frames are read, and these files do not exist
