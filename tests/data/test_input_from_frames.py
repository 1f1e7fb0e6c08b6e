"""``input_from_frames`` (a clip held in memory) gives exactly what the row builders give after decoding.

``kerasmer predict`` and the raw-frame serving tests rely on it: the model sees the same input whether its clip
came from a dataset's folder or from a video.
"""

import numpy as np
import pytest

from kerasmer.data import load_clip, make_input_builder, make_synthetic, read_dataset
from kerasmer.data.pipeline.inputs import frame_positions, input_from_frames


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("syn"), subjects=1, clips_per_class=1, fps=100,
                          image_size=(48, 48), seed=3)
    return read_dataset("casme2", root)


def _apex_position(row, frames_numbers):
    return int(np.abs(np.asarray(frames_numbers) - int(row["apex"])).argmin())


@pytest.mark.parametrize("modality, shape, sampler", [
    ("dynamic_image", (32, 32, 3), None),
    ("frame", (24, 24, 1), None),
    ("clip", (5, 16, 16, 3), "uniform"),
    ("clip", (7, 16, 16, 1), "apex_middle"),
    ("clip", (4, 16, 16, 3), "centered"),
    ("clip", (6, 16, 16, 3), "interpolate"),
    ("flow", (28, 28, 3), None),
])
def test_in_memory_clip_gives_the_row_builders_input(rows, modality, shape, sampler):
    for _, row in rows.iterrows():
        numbers = [n for n in row["frame_numbers"] if row["onset"] <= n <= row["offset"]]
        frames = load_clip(row)
        assert len(frames) == len(numbers)
        expected = make_input_builder(modality, sampler=sampler)(row, shape)
        got = input_from_frames(frames, modality, shape, apex=_apex_position(row, numbers), sampler=sampler)
        assert got.shape == expected.shape == shape
        if modality != "flow":
            np.testing.assert_allclose(got, expected, atol=1e-6)
            continue
        # The flow builder lets the JPEG decoder make grey frames; in memory, RGB is converted to grey.  The two
        # differ by one grey level at a few pixels, which moves the flow at a handful of pixels only.
        diff = np.abs(got - expected)
        assert diff.mean() < 2e-3 and np.mean(diff < 0.05) > 0.995, (diff.mean(), diff.max())


def test_grey_frames_and_middle_apex():
    frames = np.random.default_rng(0).integers(0, 255, (9, 20, 20), dtype=np.uint8)
    x = input_from_frames(frames, "frame", (20, 20, 1))
    np.testing.assert_array_equal(x[..., 0], frames[4].astype(np.float32))
    assert frame_positions("clip", "uniform", 21, 4, (5, 32, 32, 3)) == [0, 4, 9, 15, 20]


@pytest.mark.parametrize("frames, kwargs, match", [
    (np.zeros((0, 8, 8, 3), np.uint8), {}, "T >= 1"),
    (np.zeros((3, 8, 8, 3), np.float32), {}, "uint8"),
    (np.zeros((3, 8, 8, 3), np.uint8), {"apex": 3}, "outside"),
    (np.zeros((3, 8, 8, 3), np.uint8), {"modality": "depth"}, "not built in"),
])
def test_bad_input_is_named(frames, kwargs, match):
    modality = kwargs.pop("modality", "frame")
    with pytest.raises((ValueError, TypeError), match=match):
        input_from_frames(frames, modality, (8, 8, 3), **kwargs)
