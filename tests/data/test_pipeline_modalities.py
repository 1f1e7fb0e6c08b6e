"""The pipeline's options: flow, samplers, apex, face, disk cache, augmentation, balancing, model registry."""

import cv2
import numpy as np
import pandas as pd
import pytest

from kerasmer.data import (
    AnnotationError, FaceCropper, build_input, clear_input_cache, fit_normalization, load_clip, make_dataset,
    make_dataset_for_model, make_input_builder, make_synthetic, model_input_options, preprocess_cache,
    read_dataset, register_input_builder, resolve_apex,
)
from kerasmer.data.preprocess import samplers
from kerasmer.data.preprocess.face import apply_crop
from tests.data.augment_util import apply_augment as _apply

CLASSES = ["negative", "positive", "surprise"]
CLIP = (4, 16, 16, 1)


@pytest.fixture(scope="module")
def df(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("syn"), subjects=2, clips_per_class=1, fps=100,
                          image_size=(48, 48), seed=2)
    return read_dataset("casme2", root)


def _epoch(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture
def imreads(monkeypatch):
    """Counts every image decode: the flow builder calls cv2.imread, the pipeline's strict decode_frame
    cv2.imdecode (issue 11: it checks the file is complete first)."""
    count = {"n": 0}

    def counting(real):
        def wrapped(*args, **kw):
            count["n"] += 1
            return real(*args, **kw)
        return wrapped

    monkeypatch.setattr(cv2, "imread", counting(cv2.imread))
    monkeypatch.setattr(cv2, "imdecode", counting(cv2.imdecode))
    return count


# ----------------------------------------------------------------- samplers, apex, face


def test_clip_samplers_use_samplers_module(df):
    row = df.iloc[1]
    numbers = [n for n in row["frame_numbers"] if row["onset"] <= n <= row["offset"]]
    apex = numbers.index(int(row["apex"]))
    full = load_clip(row).astype(np.float32)  # 48 x 48: no resize, so exact comparisons
    shape = (6, 48, 48, 3)
    for sampler, pick in (("uniform", samplers.sample_uniform(len(numbers), apex, n=6)),
                          ("centered", samplers.sample_centered(len(numbers), apex, n=6))):
        x = build_input(row, modality="clip", input_shape=shape, sampler=sampler)
        np.testing.assert_array_equal(x, full[pick])
    np.testing.assert_array_equal(build_input(row, modality="clip", input_shape=shape),
                                  build_input(row, modality="clip", input_shape=shape, sampler="uniform"))
    x = build_input(row, modality="clip", input_shape=shape, sampler="interpolate")
    np.testing.assert_allclose(x, samplers.interpolate(full, 6), atol=1e-3)
    centered = build_input(row, modality="clip", input_shape=shape, sampler="centered", apex="middle")
    np.testing.assert_array_equal(centered[3], full[resolve_apex(row, "middle")])
    with pytest.raises(ValueError, match="sampler='centered' applies to modality 'clip' only"):
        build_input(row, modality="frame", input_shape=(16, 16, 3), sampler="centered")
    with pytest.raises(ValueError, match="sampler must be one of"):
        build_input(row, modality="clip", input_shape=shape, sampler="random")


def test_apex_choices_for_the_frame_input(df):
    row = df.iloc[0]
    full = load_clip(row).astype(np.float32)
    middle = build_input(row, modality="frame", input_shape=(48, 48, 3), apex="middle")
    np.testing.assert_array_equal(middle, full[resolve_apex(row, "middle")])
    annotated = build_input(row, modality="frame", input_shape=(48, 48, 3), apex="annotated")
    np.testing.assert_array_equal(annotated, full[resolve_apex(row, "annotated")])
    no_apex = row.copy()
    no_apex["apex"], no_apex["apex_missing"] = pd.NA, True
    with pytest.raises(AnnotationError, match=r"01/.*no apex is annotated.*apex='spotted'"):
        build_input(no_apex, modality="frame", input_shape=(16, 16, 3), apex="annotated")
    with pytest.raises(ValueError, match="apex must be one of"):
        build_input(row, modality="frame", input_shape=(16, 16, 3), apex="peak")


class FixedFace(FaceCropper):
    """A cropper whose 'detection' is a fixed box, so the expected crop is known."""

    def detect(self, frame):
        return {"box": (10.0, 8.0, 24.0, 24.0)}


def test_face_crop_is_one_transform_for_the_clip(df):
    row = df.iloc[2]
    face = FixedFace("haar", margin=0.0, size=24)
    x = build_input(row, modality="clip", input_shape=(4, 24, 24, 3), face=face)
    numbers = [n for n in row["frame_numbers"] if row["onset"] <= n <= row["offset"]]
    pick = samplers.sample_uniform(len(numbers), numbers.index(int(row["apex"])), n=4)
    m, out = face.crop_matrix(face.detect(None))
    expected = apply_crop(load_clip(row, frames=[numbers[i] for i in pick]), m, out).astype(np.float32)
    np.testing.assert_array_equal(x, expected)
    assert make_input_builder("clip", face=face).config["face"] == face.config()
    with pytest.raises(TypeError, match="face must be None, 'haar', 'mtcnn' or a FaceCropper"):
        build_input(row, modality="frame", input_shape=(16, 16, 3), face=3)


# ----------------------------------------------------------------- flow


def test_flow_end_to_end_with_its_own_augmentation(df):
    shape = (16, 16, 3)
    plain, y = _epoch(make_dataset(df, modality="flow", input_shape=shape, class_names=CLASSES,
                                   normalization=False, batch_size=4))
    assert plain.shape == (len(df), *shape) and y.shape == (len(df), 3)
    assert plain[..., 0].min() < 0 and np.abs(plain[..., :2]).max() <= 1.0 + 1e-6  # signed, per-clip scaled
    flipped, _ = _epoch(make_dataset(df, modality="flow", input_shape=shape, class_names=CLASSES,
                                     normalization=False, augment={"flip": True, "rotation": 0.0}, seed=3))
    kinds = []
    for a, b in zip(plain, flipped):
        if np.allclose(a, b):
            kinds.append("same")
        else:  # a flip mirrors the field and negates u; image augmentation would not negate
            np.testing.assert_allclose(b[..., 0], -a[:, ::-1, 0], atol=1e-5)
            np.testing.assert_allclose(b[..., 1:], a[:, ::-1, 1:], atol=1e-5)
            kinds.append("flipped")
    assert set(kinds) == {"same", "flipped"}
    with pytest.raises(ValueError, match="flow=.* options apply to modality 'flow' only, not 'clip'"):
        build_input(df.iloc[0], modality="clip", input_shape=CLIP, flow={"method": "dis"})
    dis = build_input(df.iloc[0], modality="flow", input_shape=shape, flow={"method": "dis"})
    assert dis.shape == shape and not np.allclose(dis, plain[0])  # the option reaches the flow builder
    with pytest.raises(ValueError, match=r"\['brightness'\] cannot be applied to 'flow' inputs"):
        make_dataset(df, modality="flow", input_shape=shape, class_names=CLASSES, training=True,
                     normalization=False, augment={"brightness": 0.2})


# ----------------------------------------------------------------- disk cache


def test_cache_dir_is_reused_across_folds_and_runs(df, tmp_path, imreads):
    cache_dir = tmp_path / "cache"
    subjects = sorted(df["subject"].unique())
    fold_a, fold_b = df[df["subject"] == subjects[0]], df[df["subject"] == subjects[1]]
    clear_input_cache()
    fit_normalization(df, modality="clip", input_shape=CLIP, cache_dir=cache_dir)  # first run fills it
    disk = preprocess_cache(cache_dir, df, make_input_builder("clip"), "clip")
    assert disk.misses == len(df) and len(disk.files()) == len(df) and imreads["n"] > 0
    for fold in (fold_a, fold_b):  # a later fold (or run): memo emptied, so only the files can help
        clear_input_cache()
        hits, misses, reads = disk.hits, disk.misses, imreads["n"]
        norm = fit_normalization(fold, modality="clip", input_shape=CLIP, cache_dir=cache_dir)
        assert (disk.hits - hits, disk.misses - misses, imreads["n"] - reads) == (len(fold), 0, 0)
        clear_input_cache()
        x, _ = _epoch(make_dataset(fold, modality="clip", input_shape=CLIP, class_names=CLASSES,
                                   training=True, normalization=norm, cache_dir=cache_dir))
        assert x.shape == (len(fold), *CLIP)
        assert (disk.misses - misses, imreads["n"] - reads) == (0, 0)  # read from the .npy files by TF ops
    # what comes from the cache is what the builder makes
    cached, _ = _epoch(make_dataset(df, modality="clip", input_shape=CLIP, class_names=CLASSES,
                                    normalization=False, cache_dir=cache_dir))
    clear_input_cache()
    fresh, _ = _epoch(make_dataset(df, modality="clip", input_shape=CLIP, class_names=CLASSES,
                                   normalization=False))
    np.testing.assert_array_equal(cached, fresh)
    # a changed setting is another namespace: all misses, frames decoded again
    reads = imreads["n"]
    fit_normalization(fold_a, modality="clip", input_shape=CLIP, sampler="centered", cache_dir=cache_dir)
    other = preprocess_cache(cache_dir, df, make_input_builder("clip", sampler="centered"), "clip")
    assert other.directory != disk.directory and other.misses == len(fold_a) and imreads["n"] > reads
    clear_input_cache()
    misses = disk.misses
    fit_normalization(fold_a, modality="clip", input_shape=(4, 12, 12, 1), cache_dir=cache_dir)
    assert disk.misses - misses == len(fold_a)  # another input shape: other files in the same namespace


def test_flow_cache_hit_reads_no_frame(df, tmp_path, imreads):
    shape = (16, 16, 3)
    clear_input_cache()
    first = build_input(df.iloc[0], modality="flow", input_shape=shape, cache_dir=tmp_path)
    assert imreads["n"] >= 2  # onset and apex
    clear_input_cache()
    reads = imreads["n"]
    again = build_input(df.iloc[0], modality="flow", input_shape=shape, cache_dir=tmp_path)
    assert imreads["n"] == reads
    np.testing.assert_array_equal(first, again)


# ----------------------------------------------------------------- augmentation


@register_input_builder("test_mid_clip")
def _mid_clip(row, input_shape):
    """T identical frames with a grey ramp in [64, 192], so contrast in 1 +- 0.5 never clips."""
    t, h, w, c = input_shape
    img = np.broadcast_to(np.linspace(64, 192, w, dtype=np.float32)[None, :, None], (h, w, c))
    return np.broadcast_to(img, (t, h, w, c)).copy()


def _augmented(df, augment, shape=(4, 16, 16, 3), seed=0):
    x, _ = _epoch(make_dataset(df, modality="test_mid_clip", input_shape=shape, class_names=CLASSES,
                               training=True, normalization=False, batch_size=len(df), augment=augment, seed=seed))
    return x


def test_contrast_and_colour_shift_are_the_same_for_every_frame(df):
    original = _mid_clip(None, (4, 16, 16, 3))
    off = {"flip": False, "rotation": 0.0, "brightness": 0.0}
    x = _augmented(df, dict(off, contrast=0.5))
    ratios = []
    for clip in x:
        for frame in clip[1:]:
            np.testing.assert_allclose(frame, clip[0], atol=1e-4)
        np.testing.assert_allclose(clip.mean(), original.mean(), atol=1e-3)  # scaled about the clip's mean
        ratios.append(clip.std() / original.std())
    assert all(0.5 - 1e-4 <= r <= 1.5 + 1e-4 for r in ratios) and np.ptp(ratios) > 0.05
    x = _augmented(df, dict(off, color_shift=0.2))
    shifts = x - original  # one value per clip and channel
    for s in shifts:
        np.testing.assert_allclose(s, np.broadcast_to(s[0, 0, 0], s.shape), atol=1e-3)
        assert np.abs(s[0, 0, 0]).max() <= 0.2 * 255 + 1e-3
    assert np.ptp(shifts[:, 0, 0, 0], axis=-1).max() > 1.0  # channels move differently


def test_salt_and_pepper_noise(df):
    off = {"flip": False, "rotation": 0.0, "brightness": 0.0}
    x = _augmented(df, dict(off, salt_pepper=0.2), shape=(4, 24, 24, 3))
    original = _mid_clip(None, (4, 24, 24, 3))
    hit = np.any(x != original, axis=-1)
    assert 0.12 < hit.mean() < 0.28
    noisy = x[hit]
    assert set(np.unique(noisy)) <= {0.0, 255.0} and np.all(noisy == noisy[:, :1])  # channels alike
    assert 0.3 < (noisy[:, 0] == 0).mean() < 0.7  # salt and pepper
    assert not np.array_equal(hit[:, 0], hit[:, 1])  # a new pattern per frame (documented choice)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['blur'\]"):
        _augmented(df, {"blur": 1.0})
    with pytest.raises(ValueError, match=r"augment\['salt_pepper'\] must be in \[0, 1\]"):
        _augmented(df, {"salt_pepper": 2.0})


# ----------------------------------------------------------------- balancing, determinism


@register_input_builder("test_row_id")
def _row_id(row, input_shape):
    """A constant image holding the clip's onset frame number, so a drawn element names its clip."""
    return np.full(input_shape, float(row["onset"]), np.float32)


def _imbalanced(df):
    neg = df[df["emotion"] == "negative"]
    return pd.concat([df] + [neg.assign(onset=neg["onset"] + k) for k in range(1, 5)], ignore_index=True)


def test_balanced_draws_equalize_classes(df):
    data = _imbalanced(df)  # 10 negative, 2 positive, 2 surprise
    counts = data["emotion"].value_counts()
    assert (counts["negative"], counts["positive"], counts["surprise"]) == (10, 2, 2)

    def epochs(balance, seed=0, n=3):
        ds = make_dataset(data, modality="test_row_id", input_shape=(2, 2, 1), class_names=CLASSES,
                          training=True, balance=balance, normalization=False, augment=False, batch_size=5,
                          seed=seed)
        return [_epoch(ds) for _ in range(n)]

    for x, y in epochs(True):
        assert len(y) == len(data)  # an epoch is still len(df) draws
        per_class = y.sum(0)
        assert per_class.max() - per_class.min() <= 1, per_class
        positive = x[y[:, 1] == 1][:, 0, 0, 0]
        assert len(set(positive)) == 2  # minority clips repeat, both of them
    x, y = epochs(False, n=1)[0]
    assert y.sum(0).tolist() == [10.0, 2.0, 2.0]
    (a, ya), (b, yb) = epochs(True, seed=4, n=2)
    (a2, ya2), (b2, yb2) = epochs(True, seed=4, n=2)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)  # the same seed gives the same epochs
    assert not np.array_equal(a, b)  # a new order each epoch
    assert not np.array_equal(a, epochs(True, seed=5, n=1)[0][0])
    with pytest.raises(ValueError, match="balance=True is for training sets"):
        make_dataset(data, modality="test_row_id", input_shape=(2, 2, 1), class_names=CLASSES, balance=True)


def test_order_and_augmentation_deterministic_for_a_seed(df):
    aug = {"contrast": 0.2, "color_shift": 0.1, "salt_pepper": 0.05}

    def run(seed):
        ds = make_dataset(df, modality="clip", input_shape=(3, 16, 16, 3), class_names=CLASSES, training=True,
                          seed=seed, augment=aug, batch_size=4)
        return [_epoch(ds) for _ in range(2)]

    first, again = run(1), run(1)
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][0], first[1][0])
    assert not np.array_equal(first[0][0], run(2)[0][0])


# ----------------------------------------------------------------- registry


def test_dataset_for_model_takes_modality_and_shape_from_the_registry(df):
    assert model_input_options("learnet") == {"modality": "dynamic_image", "input_shape": (112, 112, 3)}
    assert model_input_options("meranet18")["sampler"] == "centered"
    assert model_input_options("shallow_conv3d_mhsa", (5, 16, 16, 3))["sampler"] == "apex_middle"  # issue 13
    ds = make_dataset_for_model(df, "learnet", class_names=CLASSES, input_shape=(16, 16, 3), batch_size=3)
    assert ds.element_spec[0].shape.as_list() == [None, 16, 16, 3]
    x, _ = _epoch(make_dataset_for_model(df, "meranet18", class_names=CLASSES, input_shape=(4, 16, 16, 3),
                                         normalization=False))
    row = df.iloc[0]
    np.testing.assert_array_equal(x[0], build_input(row, modality="clip", input_shape=(4, 16, 16, 3),
                                                    sampler="centered"))
    with pytest.raises(TypeError, match="modality comes from model 'learnet'"):
        make_dataset_for_model(df, "learnet", class_names=CLASSES, modality="frame")
    with pytest.raises(ValueError, match="Unknown model 'lernet'"):
        make_dataset_for_model(df, "lernet", class_names=CLASSES)


# ----------------------------------------------------------------- issue 13: recipes' resampling and augmentation


def test_oversample_holds_every_class_as_often_as_the_largest(df):
    """Micro-Attention: 'resampled according to the one having largest size' (balance=True keeps len(df))."""
    from kerasmer.data.pipeline import epoch_draws

    data = _imbalanced(df)  # 10 negative, 2 positive, 2 surprise
    assert epoch_draws([10, 2, 2], "oversample") == 30 and epoch_draws([10, 2, 2], True) == 14
    assert epoch_draws([10, 0, 2], "oversample") == 20  # an absent class is not drawn
    with pytest.raises(ValueError, match="balance must be one of"):
        epoch_draws([1], "largest")
    ds = make_dataset(data, modality="test_row_id", input_shape=(2, 2, 1), class_names=CLASSES, training=True,
                      balance="oversample", normalization=False, augment=False, batch_size=7, seed=3)
    for _ in range(2):
        x, y = _epoch(ds)
        assert y.sum(0).tolist() == [10.0, 10.0, 10.0]
        negative = x[y[:, 0] == 1][:, 0, 0, 0]
        assert sorted(negative) == sorted(data[data["emotion"] == "negative"]["onset"].astype(float))  # each once
    with pytest.raises(ValueError, match="'oversample' is for training sets"):
        make_dataset(data, modality="test_row_id", input_shape=(2, 2, 1), class_names=CLASSES, balance="oversample")


def test_corner_crop_takes_one_of_the_four_corners_and_resizes_back():
    """Micro-Attention (CDE): four-corner 224-of-240 crops; here 12 of 16 pixels, so each corner is exact."""
    import tensorflow as tf

    x = np.arange(16 * 16, dtype=np.float32).reshape(16, 16, 1)
    off = {"flip": False, "rotation": 0.0, "brightness": 0.0}
    expected = {}
    for top in (0, 4):
        for left in (0, 4):
            crop = x[top:top + 12, left:left + 12]
            expected[(top, left)] = tf.image.resize(crop, (16, 16), method="bilinear").numpy()
    seen = set()
    for rnd in range(24):
        y = _apply({**off, "corner_crop": 0.75}, x, rnd)
        hits = [k for k, e in expected.items() if np.allclose(y, e, atol=1e-4)]
        assert len(hits) == 1, rnd
        seen.add(hits[0])
        np.testing.assert_array_equal(y, _apply({**off, "corner_crop": 0.75}, x, rnd))  # stateless
    assert seen == set(expected)  # all four corners occur
    clip = np.stack([x, x + 1.0])  # a clip: every frame gets the same corner
    yc = _apply({**off, "corner_crop": 0.75}, clip, 5)
    np.testing.assert_allclose(yc[1] - yc[0], 1.0, atol=1e-4)


def test_probability_gates_each_operation_and_one_keeps_old_outputs():
    x = np.full((8, 8, 3), 100.0, np.float32)
    settings = {"flip": False, "rotation": 0.0, "brightness": 0.0, "color_shift": 20 / 255}
    changed = [not np.array_equal(_apply({**settings, "probability": 0.5}, x, r), x) for r in range(200)]
    assert 70 <= sum(changed) <= 130  # about half the draws are shifted
    shifted = [_apply({**settings, "probability": 0.5}, x, r) - x for r in range(200)]
    assert max(np.abs(d).max() for d in shifted) <= 20.0 + 1e-4  # 'maximum value of 20'
    for r in range(5):  # probability 1 (the default) draws no gate: outputs equal those without the key
        np.testing.assert_array_equal(_apply({**settings, "probability": 1.0}, x, r), _apply(settings, x, r))


def test_smoothing_is_a_box_blur_of_at_most_the_window():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (10, 10, 1)).astype(np.float32)
    settings = {"flip": False, "rotation": 0.0, "brightness": 0.0, "smoothing": 3}
    widths = set()
    for r in range(30):
        y = _apply(settings, x, r)
        for k in (1, 2, 3):
            box = x if k == 1 else tf.nn.avg_pool2d(x[None], k, 1, "SAME")[0].numpy()
            if np.allclose(y, box, atol=1e-3):
                widths.add(k)
                break
        else:
            raise AssertionError(f"rnd {r}: not a box blur of width 1..3")
    assert widths == {1, 2, 3}


@pytest.mark.parametrize("key,value", [("corner_crop", 1.5), ("probability", -0.1), ("smoothing", 2.5),
                                       ("probability", 2)])
def test_new_augment_keys_reject_bad_values(key, value):
    from kerasmer.data.pipeline.augment import resolve_augment

    with pytest.raises(ValueError, match=key):
        resolve_augment({key: value}, True)


def test_apex_middle_clip_input_has_the_apex_frame_at_the_middle(df):
    for _, row in df.iterrows():
        x = build_input(row, modality="clip", input_shape=(13, 16, 16, 1), sampler="apex_middle")
        apex = build_input(row.to_dict() | {"onset": row["apex"], "offset": row["apex"]}, modality="clip",
                           input_shape=(1, 16, 16, 1), sampler="apex_middle")
        np.testing.assert_array_equal(x[6], apex[0])
