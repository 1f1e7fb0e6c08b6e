"""The in-graph preprocessing (kerasmer.export.preprocess) against the OpenCV/numpy pipeline it replaces.

Tolerances, measured on OpenCV 4.x: grey and enlarging resizes are bit-exact, and so are shrinks at integer
ratios; a shrink at a non-integer ratio is at most 1 grey level apart in under 1 % of the pixels (OpenCV sums
in float32); frame positions and temporal interpolation are identical; a dynamic image, min-max rescaled to
0..255, sums T such frames with weights up to about T, so it may move by a few levels where a frame moved by 1."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from kerasmer.data import load_clip, make_synthetic, read_dataset
from kerasmer.data.pipeline.inputs import frame_positions, input_from_frames
from kerasmer.export import preprocess as graph


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two synthetic clips' frames onset..offset (48 x 48, shrunk and enlarged below) and their apex positions."""
    root = make_synthetic(tmp_path_factory.mktemp("syn"), subjects=1, clips_per_class=1, fps=100,
                          image_size=(48, 48), seed=5)
    out = []
    for _, row in read_dataset("casme2", root).head(2).iterrows():
        numbers = [n for n in row["frame_numbers"] if row["onset"] <= n <= row["offset"]]
        out.append((load_clip(row), int(np.abs(np.asarray(numbers) - int(row["apex"])).argmin())))
    return out


def test_grey_is_opencvs_on_every_colour():
    v = np.arange(1 << 24, dtype=np.uint32)
    colours = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    got = graph.rgb_to_grey(colours).numpy()[..., 0]
    np.testing.assert_array_equal(got, cv2.cvtColor(colours, cv2.COLOR_RGB2GRAY))


@pytest.mark.parametrize("src, dst, exact", [
    ((128, 128), (32, 32), True),   # integer ratio: tf's area average is OpenCV's
    ((48, 64), (24, 32), True),     # OpenCV's 2 x 2 fast path rounds halves up
    ((100, 90), (64, 64), True),
    ((48, 48), (28, 28), False),    # non-integer shrink: at most 1 level apart
    ((170, 160), (112, 112), False),
    ((128, 128), (112, 112), True),
    ((24, 24), (32, 32), True),     # enlarging: OpenCV's fixed-point taps, rebuilt
    ((48, 48), (64, 40), True),     # one axis enlarged: OpenCV interpolates both
    ((7, 9), (32, 32), True),
])
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_matches_opencv_inter_area(src, dst, exact, channels):
    frames = np.random.default_rng(0).integers(0, 256, (2,) + src + (3,), dtype=np.uint8)
    got = graph.resize_frames(frames, dst, channels).numpy()
    expected = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if channels == 1 else f, dst[::-1],
                                    interpolation=cv2.INTER_AREA).reshape(dst + (channels,)) for f in frames])
    diff = np.abs(got - expected.astype(np.float32))
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert diff.max() <= (0 if exact else 1), diff.max()
    assert (diff > 0).mean() <= 0.01


@pytest.mark.parametrize("sampler", ["uniform", "apex_middle", "centered"])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 13, 16])
def test_frame_positions_are_the_samplers(sampler, n):
    fn = tf.function(lambda length, apex: graph.frame_positions("clip", sampler, length, apex, (n, 8, 8, 3)))
    for length in (1, 2, 3, 7, 12, 25):
        for apex in range(length):
            expected = frame_positions("clip", sampler, length, apex, (n, 8, 8, 3))
            assert fn(tf.constant(length), tf.constant(apex)).numpy().tolist() == expected, (length, apex)


# (max, mean) absolute differences allowed, from the measurements: 0 where every resize is exact (integer or
# 1.5 ratios, enlarging); 1 level where a shrink rounds the other way; a dynamic image amplifies those by its
# min-max rescaling (measured max 3.8, mean 0.12 at 48 -> 28).
@pytest.mark.parametrize("modality, shape, sampler, tolerance", [
    ("dynamic_image", (32, 32, 3), None, (1e-3, 1e-4)),
    ("dynamic_image", (28, 28, 3), None, (6.0, 0.25)),
    ("dynamic_image", (64, 64, 1), None, (1e-3, 1e-4)),   # enlarged, grey
    ("frame", (24, 24, 1), None, (0.0, 0.0)),
    ("frame", (28, 28, 3), None, (1.0, 0.02)),
    ("clip", (5, 16, 16, 3), "uniform", (0.0, 0.0)),
    ("clip", (7, 20, 20, 1), "apex_middle", (1.0, 0.01)),
    ("clip", (4, 16, 16, 3), "centered", (0.0, 0.0)),
    ("clip", (6, 20, 20, 3), "interpolate", (1.0, 0.01)),
])
def test_in_graph_input_equals_input_from_frames(clips, modality, shape, sampler, tolerance):
    for frames, apex in clips:
        for where in (apex, None):  # the annotated apex, and the middle frame serving_default takes
            expected = input_from_frames(frames, modality, shape, apex=where, sampler=sampler)
            pos = len(frames) // 2 if where is None else where
            got = graph.frames_to_input(frames, pos, modality=modality, input_shape=shape, sampler=sampler).numpy()
            assert got.shape == expected.shape and got.dtype == np.float32
            diff = np.abs(got - expected)
            assert diff.max() <= tolerance[0] and diff.mean() <= tolerance[1], (diff.max(), diff.mean())


def test_dynamic_image_and_interpolation_equal_numpy_on_the_same_frames():
    from kerasmer.data.preprocess.dynamic_image import dynamic_image
    from kerasmer.data.preprocess.samplers import interpolate

    x = np.random.default_rng(1).integers(0, 256, (11, 6, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(graph.dynamic_image(x).numpy(), dynamic_image(x), atol=1e-3)
    np.testing.assert_array_equal(graph.dynamic_image(np.ones((4, 3, 3, 1), np.float32)).numpy(), 0.0)
    for n in (1, 4, 11, 17):
        np.testing.assert_allclose(graph.interpolate(x, n).numpy(), interpolate(x, n), atol=1e-4)


def test_bad_modality_and_apex_are_refused():
    with pytest.raises(ValueError, match="'flow' cannot be computed in-graph"):
        graph.frames_to_input(np.zeros((3, 8, 8, 3), np.uint8), 1, modality="flow", input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="sampler"):
        graph.frames_to_input(np.zeros((3, 8, 8, 3), np.uint8), 1, modality="clip", input_shape=(2, 8, 8, 3),
                              sampler="random")
    with pytest.raises(tf.errors.InvalidArgumentError, match="apex lies past"):
        graph.frames_to_input(np.zeros((3, 8, 8, 3), np.uint8), 3, modality="frame", input_shape=(8, 8, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one frame"):
        graph.frames_to_input(np.zeros((0, 8, 8, 3), np.uint8), 0, modality="dynamic_image", input_shape=(8, 8, 3))
