"""From rows to model inputs and tf.data batches: shapes, dtypes, determinism, caching."""

import numpy as np
import pandas as pd
import pytest

from kerasmer.data import (
    AnnotationError, build_input, clear_input_cache, dynamic_image, fit_normalization, load_clip,
    make_dataset, make_synthetic, read_dataset, register_input_builder, sample_frame_numbers,
)
from kerasmer.data import pipeline
from kerasmer.data.samplers import sample_uniform

CLASSES = ["negative", "positive", "surprise"]
DI = (32, 32, 3)


@pytest.fixture(scope="module")
def df(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("syn"), subjects=2, clips_per_class=1, fps=100,
                          image_size=(48, 48), seed=1)
    return read_dataset("casme2", root)


def decodes():
    return pipeline.DECODE_STATS["frames"]


def test_load_clip(df):
    row = df.iloc[0]
    clip = load_clip(row)
    n = sum(row["onset"] <= f <= row["offset"] for f in row["frame_numbers"])
    assert clip.shape == (n, 48, 48, 3) and clip.dtype == np.uint8
    pick = load_clip(row, frames=[row["offset"], row["onset"]])
    np.testing.assert_array_equal(pick[1], clip[0])
    np.testing.assert_array_equal(pick[0], clip[-1])
    with pytest.raises(AnnotationError, match=r"01/.*frame number\(s\) \[999999\]"):
        load_clip(row, frames=[999999])
    broken = row.copy()
    broken["frame_paths"] = [p + ".missing" for p in row["frame_paths"]]
    with pytest.raises(AnnotationError, match="cannot read image"):
        load_clip(broken)


def test_sample_frame_numbers_cover_onset_apex_offset():
    row = {"onset": 10, "apex": 14, "offset": 30, "frame_numbers": list(range(5, 40))}
    # samplers.sample_uniform: rise 4 frames, fall 16, so 1 of the 4 non-apex samples before the apex
    assert sample_frame_numbers(row, 5) == [10, 14, 19, 25, 30]
    assert sample_frame_numbers(row, 5) == [10 + i for i in sample_uniform(21, 4, n=5)]
    assert sample_frame_numbers(row, 1) == [14] and sample_frame_numbers(row, 2) == [10, 14]
    missing_apex = dict(row, apex=pd.NA)
    assert sample_frame_numbers(missing_apex, 3) == [10, 20, 30]
    assert sample_frame_numbers(missing_apex, 1) == [20]
    gappy = dict(row, frame_numbers=[10, 11, 19, 30])  # indexes the frames present; apex 14 -> frame 11
    assert sample_frame_numbers(gappy, 5) == [10, 11, 19, 19, 30]
    with pytest.raises(ValueError, match="num_frames must be >= 1"):
        sample_frame_numbers(row, 0)


@pytest.mark.parametrize("modality, shape", [
    ("dynamic_image", DI), ("dynamic_image", (24, 20, 1)), ("frame", (32, 32, 3)), ("clip", (5, 16, 16, 1)),
    ("clip", (3, 16, 20, 3)),
])
def test_build_input_shapes(df, modality, shape):
    x = build_input(df.iloc[1], modality=modality, input_shape=shape)
    assert x.shape == shape and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 255.0 and x.std() > 0


def test_build_input_values_and_memo(df):
    clear_input_cache()
    row = df.iloc[2]
    before = decodes()
    x = build_input(row, modality="dynamic_image", input_shape=(48, 48, 3))
    assert decodes() > before
    # no resize at the frames' own size: exactly the dynamic image of load_clip
    np.testing.assert_allclose(x, dynamic_image(load_clip(row).astype(np.float32)), atol=1e-3)
    after = decodes()
    again = build_input(row, modality="dynamic_image", input_shape=(48, 48, 3))
    assert decodes() == after  # memoized: no decoding
    again[:] = -1  # callers get a copy
    assert build_input(row, modality="dynamic_image", input_shape=(48, 48, 3)).min() >= 0
    frame = build_input(row, modality="frame", input_shape=(48, 48, 3))
    np.testing.assert_array_equal(frame, load_clip(row, frames=[row["apex"]])[0].astype(np.float32))
    no_apex = row.copy()
    no_apex["apex"] = pd.NA
    middle = [f for f in row["frame_numbers"] if row["onset"] <= f <= row["offset"]]
    np.testing.assert_array_equal(build_input(no_apex, modality="frame", input_shape=(48, 48, 3)),
                                  load_clip(row, frames=[middle[len(middle) // 2]])[0].astype(np.float32))
    with pytest.raises(ValueError, match="unknown modality 'optical_fluff'"):
        build_input(row, modality="optical_fluff", input_shape=DI)


def test_fit_normalization(df):
    mean, std = fit_normalization(df, modality="dynamic_image", input_shape=DI)
    xs = np.stack([build_input(r, modality="dynamic_image", input_shape=DI) for _, r in df.iterrows()])
    assert mean.shape == (3,) and std.shape == (3,) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, xs.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(std, xs.std(axis=(0, 1, 2)), rtol=1e-4)


def _epoch(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_make_dataset_shapes_labels_and_normalization(df):
    ds = make_dataset(df, modality="dynamic_image", input_shape=DI, class_names=CLASSES, batch_size=4)
    x, y = _epoch(ds)
    assert ds.element_spec[0].shape.as_list() == [None, *DI] and ds.element_spec[0].dtype.name == "float32"
    assert x.shape == (len(df), *DI) and y.shape == (len(df), 3) and y.dtype == np.float32
    assert [CLASSES[i] for i in y.argmax(1)] == list(df["emotion"])  # not shuffled, in order
    assert np.all(y.sum(1) == 1)
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), 0, atol=1e-3)  # normalized with df's own statistics
    np.testing.assert_allclose(x.std(axis=(0, 1, 2)), 1, atol=1e-3)
    raw, _ = _epoch(make_dataset(df, modality="dynamic_image", input_shape=DI, class_names=CLASSES,
                                 normalization=False))
    norm = (np.full(3, 10.0, np.float32), np.full(3, 2.0, np.float32))
    given, _ = _epoch(make_dataset(df, modality="dynamic_image", input_shape=DI, class_names=CLASSES,
                                   normalization=norm))
    np.testing.assert_allclose(given, (raw - 10) / 2, rtol=1e-5, atol=1e-4)
    clip_x, _ = _epoch(make_dataset(df, modality="clip", input_shape=(4, 16, 16, 1), class_names=CLASSES,
                                    batch_size=3, training=True))
    assert clip_x.shape == (len(df), 4, 16, 16, 1)


def test_unknown_label_names_the_clip(df):
    with pytest.raises(ValueError, match=r"casme2 01/EP\d\d_\d\d .*'positive', not one of class_names"):
        make_dataset(df, modality="dynamic_image", input_shape=DI, class_names=["negative", "surprise"])


def test_deterministic_for_a_seed(df):
    def run(seed):
        ds = make_dataset(df, modality="dynamic_image", input_shape=DI, class_names=CLASSES, batch_size=4,
                          training=True, seed=seed)
        return [_epoch(ds) for _ in range(2)]

    (x1, y1), (x2, y2) = run(5)
    (x1b, y1b), (x2b, y2b) = run(5)
    for a, b in ((x1, x1b), (y1, y1b), (x2, x2b), (y2, y2b)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(x1, x2)  # a new shuffle/augmentation each epoch
    (z1, _), _ = run(6)
    assert not np.array_equal(x1, z1)


def test_second_epoch_does_not_decode(df):
    for cache, second_epoch_decodes in ((True, False), (False, True)):
        clear_input_cache()  # so that only tf.data's cache can spare the decoding
        ds = make_dataset(df, modality="dynamic_image", input_shape=DI, class_names=CLASSES, training=True,
                          normalization=(np.zeros(3), np.ones(3)), cache=cache)
        start = decodes()
        _epoch(ds)
        first = decodes() - start
        assert first >= sum(len(p) for p in df["frame_paths"]) // 2
        clear_input_cache()
        mid = decodes()
        _epoch(ds)
        assert (decodes() > mid) == second_epoch_decodes


@register_input_builder("test_still_clip")
def _still_clip(row, input_shape):
    """T identical frames with a left-right gradient, so any geometric change shows."""
    t, h, w, c = input_shape
    img = np.broadcast_to(np.linspace(0, 255, w, dtype=np.float32)[None, :, None], (h, w, c))
    return np.broadcast_to(img, (t, h, w, c)).copy()


def test_augmentation_is_identical_across_frames(df):
    shape = (4, 16, 16, 3)
    ds = make_dataset(df, modality="test_still_clip", input_shape=shape, class_names=CLASSES, training=True,
                      normalization=False, batch_size=len(df), augment={"rotation": 10.0, "brightness": 0.2})
    x, _ = _epoch(ds)
    original = _still_clip(None, shape)
    assert any(not np.allclose(clip, original) for clip in x)  # it does transform
    for clip in x:
        for frame in clip[1:]:
            np.testing.assert_allclose(frame, clip[0], atol=1e-4)
    plain, _ = _epoch(make_dataset(df, modality="test_still_clip", input_shape=shape, class_names=CLASSES,
                                   training=True, normalization=False, augment=False))
    np.testing.assert_array_equal(plain, np.broadcast_to(original, plain.shape))
