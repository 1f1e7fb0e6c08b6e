"""From rows to model inputs and tf.data batches: shapes, dtypes, determinism, caching."""

import numpy as np
import pandas as pd
import pytest

from kerasmer.data import (
    AnnotationError, build_input, clear_input_cache, dynamic_image, fit_normalization, load_clip,
    make_dataset, make_synthetic, read_dataset, register_input_builder, sample_frame_numbers,
)
from kerasmer.data import pipeline
from kerasmer.data.preprocess.samplers import sample_uniform

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


@pytest.mark.parametrize("options", [{}, {"augment": False}, {"balance": "oversample"}])
def test_reuse_gives_the_same_batches_without_decoding_again(df, options):
    """A dataset per epoch with ``reuse`` (as the fold trainer builds them): the batches of fresh builds,
    the inputs read from the first epoch's tf.data cache, and rebuilt when the rows change."""
    kw = dict(modality="dynamic_image", input_shape=DI, class_names=CLASSES, batch_size=3, training=True,
              normalization=(np.full(3, 5.0), np.full(3, 2.0)), **options)
    reuse = {}
    for seed in (3, 4):
        kept = _epoch(make_dataset(df, seed=seed, reuse=reuse, **kw))
        fresh = _epoch(make_dataset(df, seed=seed, **kw))
        for a, b in zip(kept, fresh):
            np.testing.assert_array_equal(a, b)
    first_inputs, first_key = reuse["inputs"], reuse["key"]
    if not options.get("balance"):
        clear_input_cache()  # only the kept tf.data cache can spare the decoding now
        start = decodes()
        _epoch(make_dataset(df, seed=5, reuse=reuse, **kw))
        assert decodes() == start and reuse["inputs"] is first_inputs
    fewer = df.iloc[1:]
    x, y = _epoch(make_dataset(fewer, seed=5, reuse=reuse, **kw))
    assert reuse["key"] != first_key and (first_inputs is None or reuse["inputs"] is not first_inputs)
    assert options.get("balance") or len(x) == len(fewer)  # balanced epochs draw classes x largest class
    np.testing.assert_array_equal(y, _epoch(make_dataset(fewer, seed=5, **kw))[1])


@pytest.mark.parametrize("options", [{}, {"augment": False}, {"balance": "oversample"}, {"balance": True,
                                                                                        "augment": False}])
def test_a_sequence_of_seeds_gives_each_seeds_epoch_in_turn(df, options):
    """``seed=[a, b, c]``: one dataset (one iterator for many epochs, as ``EpochFeed`` reads it) with the
    batches of ``seed=a``, then ``b``, then ``c``, bit for bit; no batch mixes two epochs."""
    kw = dict(modality="dynamic_image", input_shape=DI, class_names=CLASSES, batch_size=4, training=True,
              normalization=(np.full(3, 5.0), np.full(3, 2.0)), **options)
    reuse = {}
    chained = [b for b in make_dataset(df, seed=[7, 8, 9], reuse=reuse, **kw).as_numpy_iterator()]
    single = [b for s in (7, 8, 9) for b in make_dataset(df, seed=s, reuse=reuse, **kw).as_numpy_iterator()]
    assert len(chained) == len(single) and len(single) % 3 == 0
    for (xa, ya), (xb, yb) in zip(chained, single):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    per_epoch = len(single) // 3
    assert not np.array_equal(single[0][0], single[per_epoch][0]), "each epoch draws its own order/transforms"
    with pytest.raises(ValueError, match="empty sequence"):
        make_dataset(df, seed=[], **kw)


@pytest.mark.parametrize("options", [{}, {"training": True}, {"training": True, "balance": True}])
def test_datasets_run_without_the_autotuning_model(df, options):
    """tf.data's autotuning model made deleting an iterator wait for its thread's next wake-up (a period that
    doubles from 10 ms), so every ``fit`` call, one per kerasmer epoch, snapped up to 10 ms x (2^k - 1)."""
    ds = make_dataset(df, modality="dynamic_image", input_shape=DI, class_names=CLASSES, batch_size=3, **options)
    assert ds.options().autotune.enabled is False
    assert len(_epoch(ds)[0]) == len(df)  # and it still runs: parallel maps and prefetch without the model


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


@pytest.mark.parametrize("shape", [(16, 16, 12), (20, 9, 39), (5, 33, 48), (1, 7, 12)])
def test_wide_inputs_rotate_with_gathers_exactly_as_tensorflows_kernel(shape):
    """A clip's frames folded into channels are rotated by gathers (coordinates once per pixel): the same
    values, bit for bit, as ``affine_transform`` (``ImageProjectiveTransformV3``, bilinear, reflected border),
    at small and large angles, on non-square images whose rotated coordinates leave the image by more than
    its size (the reflection's modulo), and on a one-pixel side."""
    import keras
    import tensorflow as tf

    from kerasmer.data.pipeline import augment

    assert shape[-1] >= augment.GATHER_MIN_CHANNELS
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32))
    for angle in (0.0, 0.05, -0.087, 0.7, 2.5, -3.1):
        transform = augment._rotation_transform(tf.constant(angle), float(shape[0]), float(shape[1]))
        kernel = keras.ops.image.affine_transform(x[None], tf.stack(transform + [0.0, 0.0])[None],
                                                  interpolation="bilinear", fill_mode="reflect")[0]
        np.testing.assert_array_equal(augment._rotate(x, tf.constant(angle)).numpy(), kernel.numpy())


def test_clips_take_the_gather_rotation_and_images_the_kernel(df, monkeypatch):
    from kerasmer.data.pipeline import augment

    calls = []
    real = augment._rotate_gather
    monkeypatch.setattr(augment, "_rotate_gather", lambda x, t: calls.append(x.shape[-1]) or real(x, t))
    for shape in ((4, 16, 16, 3), (16, 16, 3)):
        _epoch(make_dataset(df, modality="test_still_clip" if len(shape) == 4 else "dynamic_image",
                            input_shape=shape, class_names=CLASSES, training=True, seed=1, batch_size=len(df)))
    assert calls == [12]  # traced once, for the clip (4 frames x 3 channels); the image keeps the kernel


# ----------------------------------------------------------------- a model's spec, through the registry's lookup


def _numbered_clip(tmp_path, n=30, first=101, apex=115):
    """One clip whose frame number k is a flat grey of 5 * (k - first + 1): the mean names the frame."""
    import cv2

    paths = []
    for k in range(first, first + n):
        path = tmp_path / f"img{k}.png"
        cv2.imwrite(str(path), np.full((16, 16, 3), 5 * (k - first + 1), np.uint8))
        paths.append(str(path))
    return pd.DataFrame([{
        "dataset": "handmade", "subject": "01", "clip": "EP01", "onset": first, "apex": apex,
        "offset": first + n - 1, "frame_paths": paths, "frame_numbers": list(range(first, first + n)),
        "emotion": "surprise",
    }])


def _frame_numbers(x, first=101):
    return [int(round(v / 5)) + first - 1 for v in x.reshape(x.shape[0], -1).mean(axis=1)]


def test_a_centred_model_gets_frames_centred_on_the_apex(tmp_path):
    from kerasmer.data import make_dataset_for_model, model_input_options
    from kerasmer.data.preprocess.samplers import sample_centered

    assert model_input_options("meranet18")["sampler"] == "centered"
    df = _numbered_clip(tmp_path)
    x, _ = _epoch(make_dataset_for_model(df, "meranet18", class_names=["surprise"], input_shape=(8, 16, 16, 3),
                                         normalization=False, batch_size=1))
    # the apex (frame 115, position 14) sits at position 8 // 2 of 8 consecutive frames
    assert _frame_numbers(x[0]) == list(range(111, 119))
    assert _frame_numbers(x[0]) == [101 + i for i in sample_centered(30, 14, n=8)]
    # a clip model without a spec of its own samples onset -> apex -> offset instead
    x, _ = _epoch(make_dataset_for_model(df, {"modality": "clip", "input_shape": (8, 16, 16, 3)},
                                         class_names=["surprise"], normalization=False, batch_size=1))
    assert _frame_numbers(x[0])[0] == 101 and _frame_numbers(x[0])[-1] == 130


def test_model_options_by_name_dict_or_entry_and_without_a_lookup(tmp_path):
    from kerasmer.data import make_dataset_for_model, model_input_options
    from kerasmer.data.pipeline import set_model_spec_lookup

    class Entry:
        name = "entry"

        def input_options(self, input_shape=None):
            return {"modality": "frame", "input_shape": input_shape or (16, 16, 3)}

    assert model_input_options(Entry(), (8, 8, 3)) == {"modality": "frame", "input_shape": (8, 8, 3)}
    assert model_input_options({"modality": "frame", "input_shape": [16, 16, 3]}, (4, 4, 1)) == {
        "modality": "frame", "input_shape": (4, 4, 1)}
    with pytest.raises(ValueError, match="unknown keys"):
        model_input_options({"modality": "frame", "input_shape": (8, 8, 3), "samplr": "uniform"})
    with pytest.raises(TypeError, match="registered name"):
        model_input_options(3)
    previous = set_model_spec_lookup(None)
    try:
        with pytest.raises(RuntimeError, match="no model lookup is installed"):
            model_input_options("any name")
    finally:
        set_model_spec_lookup(previous)
    # a model's own augmentation is for training sets only: evaluation inputs stay as built
    df = _numbered_clip(tmp_path)
    spec = {"modality": "frame", "input_shape": (16, 16, 3), "augment": {"brightness": 0.5}}
    x, _ = _epoch(make_dataset_for_model(df, spec, class_names=["surprise"], normalization=False))
    np.testing.assert_array_equal(x[0], build_input(df.iloc[0], modality="frame", input_shape=(16, 16, 3)))
    x, _ = _epoch(make_dataset_for_model(df, spec, class_names=["surprise"], normalization=False, training=True,
                                         seed=3))
    assert not np.array_equal(x[0], build_input(df.iloc[0], modality="frame", input_shape=(16, 16, 3)))


def test_the_data_layer_names_no_model():
    import pathlib

    import kerasmer

    root = pathlib.Path(kerasmer.__file__).parent / "data"
    names = set(kerasmer.list_models()) | {"meranet18", "learnet", "larnet", "resnet3d", "shallow_",
                                           "micro_attention", "attention56", "attention92", "emoresnet"}
    found = [f"{path.relative_to(root)}: {name}" for path in sorted(root.rglob("*"))
             if path.suffix in (".py", ".csv", ".md", ".txt") for name in sorted(names)
             if name in path.read_text(encoding="utf-8")]
    assert not found, f"kerasmer/data names models: {found}"
