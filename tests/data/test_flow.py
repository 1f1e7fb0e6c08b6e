"""Optical flow, optical strain, the (u, v, strain) input and the "flow" input builder."""

import cv2
import numpy as np
import pandas as pd
import pytest

from kerasmer.data.pipeline.inputs import flow_builder, make_flow_builder
from kerasmer.data.preprocess.flow import flow_input, optical_flow, optical_strain, resize_flow
from kerasmer.data.readers import read_dataset
from kerasmer.data.schema import AnnotationError
from kerasmer.data.synthetic import make_synthetic


def _texture(seed=0, size=(96, 112)):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 255, (size[0] // 4, size[1] // 4)).astype(np.float32)
    return cv2.GaussianBlur(cv2.resize(img, size[::-1], interpolation=cv2.INTER_CUBIC), (0, 0), 1.5).astype(np.uint8)


def _shift(img, dx, dy):
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_flow_recovers_a_known_shift(method):
    a = _texture()
    b = _shift(a, 2.0, -1.0)
    f = optical_flow(a, b, method=method)
    assert f.shape == (96, 112, 2) and f.dtype == np.float32
    core = f[16:-16, 16:-16].reshape(-1, 2)
    assert np.allclose(np.median(core, axis=0), [2.0, -1.0], atol=0.25)
    # colour input is converted, same answer
    f3 = optical_flow(cv2.cvtColor(a, cv2.COLOR_GRAY2BGR), cv2.cvtColor(b, cv2.COLOR_GRAY2BGR), method=method)
    assert np.allclose(f3, f)


def test_flow_bad_arguments():
    a = _texture()
    with pytest.raises(ValueError, match="method must be one of"):
        optical_flow(a, a, method="lucas")
    with pytest.raises(ValueError, match="differ in size"):
        optical_flow(a, a[:50])
    with pytest.raises(ValueError, match="unknown option"):
        optical_flow(a, a, method="farneback", window=3)


def test_tvl1_without_contrib_names_the_package(monkeypatch):
    monkeypatch.delattr(cv2, "optflow", raising=False)
    with pytest.raises(ImportError, match="opencv-contrib"):
        optical_flow(_texture(), _texture(), method="tvl1")


def test_strain_of_translation_stretch_and_shear():
    yy, xx = np.mgrid[0:32, 0:40].astype(np.float32)
    translation = np.stack([np.full_like(xx, 3.0), np.full_like(xx, -2.0)], -1)
    assert np.allclose(optical_strain(translation), 0.0)
    stretch = np.stack([0.05 * xx, np.zeros_like(xx)], -1)
    assert np.allclose(optical_strain(stretch), 0.05, atol=1e-6)
    shear = np.stack([0.04 * yy, np.zeros_like(xx)], -1)  # e_xy = 0.02 -> sqrt(2) * 0.02
    assert np.allclose(optical_strain(shear), np.sqrt(2) * 0.02, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        optical_strain(np.zeros((8, 8, 3)))


def test_resize_flow_rescales_displacements():
    f = np.zeros((40, 80, 2), np.float32)
    f[..., 0], f[..., 1] = 4.0, 2.0
    small = resize_flow(f, (20, 20))
    assert small.shape == (20, 20, 2)
    assert np.allclose(small[..., 0], 1.0) and np.allclose(small[..., 1], 1.0)


def test_flow_input_channels_and_normalisation():
    a = _texture(1)
    b = a.copy()
    b[30:60, 40:70] = _shift(a, 1.5, 0.0)[30:60, 40:70]  # a local movement only
    x = flow_input(a, b, size=(48, 56))
    assert x.shape == (48, 56, 3) and x.dtype == np.float32
    assert np.isclose(np.abs(x[..., :2]).max(), 1.0) and np.isclose(x[..., 2].max(), 1.0)
    assert x[..., 2].min() >= 0
    raw = flow_input(a, b, normalize="none")
    moving = np.abs(raw[30:60, 40:70, 0]).mean()
    still = np.abs(raw[:20, :20, 0]).mean()
    assert moving > 0.5 and still < 0.2 * moving
    with pytest.raises(ValueError, match="normalize"):
        flow_input(a, b, normalize="z")


@pytest.fixture(scope="module")
def synthetic_df(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("syn_flow"), subjects=1, clips_per_class=1, seed=3)
    return read_dataset("casme2", root)


def test_flow_builder_on_synthetic_rows(synthetic_df):
    build = flow_builder
    row = synthetic_df.iloc[0]
    x = build(row, (64, 64, 3))
    assert x.shape == (64, 64, 3) and np.isfinite(x).all()
    assert np.abs(x[..., :2]).max() == pytest.approx(1.0)
    # the onset->apex flow is stronger than the flow to the frame right after onset
    raw = make_flow_builder(normalize="none", method="dis")
    early = row.copy()
    early["apex"] = int(row["onset"]) + 1
    assert np.abs(raw(row, (64, 64, 3))[..., :2]).mean() > np.abs(raw(early, (64, 64, 3))[..., :2]).mean()
    same = row.copy()
    same["apex"] = row["onset"]
    with pytest.warns(UserWarning, match="apex is the onset frame"):
        assert not build(same, (16, 16, 3)).any()  # zeros, not normalised solver noise
    spotted = make_flow_builder(apex="spotted")(row, (32, 32, 3))
    assert spotted.shape == (32, 32, 3)
    assert build.config["method"] == "farneback" and make_flow_builder(face="haar").config["face"]["detector"] == "haar"


def test_flow_builder_errors_name_the_clip(synthetic_df):
    row = synthetic_df.iloc[1]
    name = f"{row['dataset']}/{row['subject']}/{row['clip']}"
    with pytest.raises(ValueError, match=f"clip {name}.*input_shape"):
        flow_builder(row, (64, 64, 1))
    missing = row.copy()
    missing["apex"], missing["apex_missing"] = pd.NA, True
    with pytest.raises(AnnotationError, match=f"clip {name}.*apex='spotted'"):
        flow_builder(missing, (64, 64, 3))
    with pytest.raises(ValueError, match="apex must be"):
        make_flow_builder(apex="peak")


def test_flow_augment_flip_negates_u():
    import tensorflow as tf

    from kerasmer.data.pipeline.augment import make_flow_augment

    ramp = np.tile(np.linspace(0, 1, 16, dtype=np.float32), (12, 1))
    x = np.stack([np.ones_like(ramp), np.full_like(ramp, 0.5), ramp], -1)
    augment = make_flow_augment(flip=True, rotation=0.0, seed=7)
    seen = set()
    for rnd in range(20):
        out = augment(tf.constant(x), tf.constant(rnd, tf.int64)).numpy()
        flipped = not np.allclose(out, x)
        if flipped:
            assert np.allclose(out[..., 0], -1) and np.allclose(out[..., 1], 0.5)
            assert np.allclose(out[..., 2], ramp[:, ::-1])
        seen.add(flipped)
        assert np.array_equal(out, augment(tf.constant(x), tf.constant(rnd, tf.int64)).numpy())  # deterministic
    assert seen == {True, False}


def test_flow_augment_rotation_matches_flow_of_rotated_frames():
    import keras
    import tensorflow as tf

    from kerasmer.data.pipeline.augment import make_flow_augment

    a = _texture(2, size=(96, 96))
    b = _shift(a, 2.0, 0.0)
    x = flow_input(a, b, normalize="none")
    rnd, seed = 3, 11
    out = make_flow_augment(flip=False, rotation=25.0, seed=seed)(tf.constant(x), tf.constant(rnd, tf.int64)).numpy()
    # rotate the frames themselves with the same random angle and warp, then measure their flow
    s = tf.constant([rnd, seed], tf.int64)
    angle = float(tf.random.stateless_uniform((), seed=s + [0, 2], minval=-np.radians(25), maxval=np.radians(25)))
    c, sn, cx = np.cos(angle), np.sin(angle), 47.5
    t = np.array([[c, -sn, cx - c * cx + sn * cx, sn, c, cx - sn * cx - c * cx, 0, 0]], np.float32)

    def rotate(img):
        return keras.ops.image.affine_transform(img[None, ..., None].astype(np.float32), t, fill_mode="reflect",
                                                data_format="channels_last").numpy()[0, ..., 0]

    expected = optical_flow(rotate(a), rotate(b))
    core = (slice(24, -24), slice(24, -24))
    assert abs(np.degrees(angle)) > 3  # the case really rotates
    assert np.allclose(np.median(out[core][..., :2].reshape(-1, 2), 0),
                       np.median(expected[core].reshape(-1, 2), 0), atol=0.3)
    assert np.allclose(np.hypot(*np.median(out[core][..., :2].reshape(-1, 2), 0)), 2.0, atol=0.3)
