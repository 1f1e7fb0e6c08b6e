"""Approximate rank pooling against a direct NumPy computation of Bilen et al.'s formula."""

import numpy as np
import pytest

from kerasmer.data import dynamic_image, rank_pooling_coefficients


def direct_alpha(T):
    """α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1}), written out with explicit harmonic sums."""
    def harmonic(n):
        return sum(1.0 / i for i in range(1, n + 1))

    return np.array([2 * (T - t + 1) - (T + 1) * (harmonic(T) - harmonic(t - 1)) for t in range(1, T + 1)])


def direct_dynamic_image(frames):
    T = frames.shape[0]
    alpha = direct_alpha(T)
    out = np.zeros(frames.shape[1:], np.float64)
    for t in range(T):
        out += alpha[t] * frames[t].astype(np.float64)
    return out


@pytest.mark.parametrize("T", [1, 2, 3, 7, 40])
def test_coefficients_match_formula(T):
    alpha = rank_pooling_coefficients(T)
    np.testing.assert_allclose(alpha, direct_alpha(T), rtol=1e-12, atol=1e-12)
    assert abs(alpha.sum()) < 1e-9  # a still clip pools to a flat image


def test_coefficients_rise_from_negative():
    alpha = rank_pooling_coefficients(10)
    assert alpha[0] < alpha[1] < 0 < alpha[-1]  # the earliest frames are subtracted


@pytest.mark.parametrize("shape", [(9, 5, 6, 3), (4, 7, 5, 1), (6, 5, 5)])
def test_matches_direct_numpy(shape):
    frames = np.random.default_rng(sum(shape)).integers(0, 256, shape).astype(np.uint8)
    raw = dynamic_image(frames, rescale=False)
    expected = direct_dynamic_image(frames)
    assert raw.shape == shape[1:] and raw.dtype == np.float32
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-3)
    scaled = dynamic_image(frames)
    expected_scaled = (expected - expected.min()) / (expected.max() - expected.min()) * 255
    np.testing.assert_allclose(scaled, expected_scaled, rtol=1e-5, atol=1e-3)
    assert scaled.min() == 0.0 and abs(scaled.max() - 255.0) < 1e-3


def test_brightening_pixel_is_brightest():
    frames = np.full((12, 4, 4, 1), 100.0)
    frames[:, 1, 2, 0] = np.linspace(100, 160, 12)  # grows over time
    frames[:, 3, 0, 0] = np.linspace(100, 40, 12)  # fades over time
    di = dynamic_image(frames)[..., 0]
    assert np.unravel_index(di.argmax(), di.shape) == (1, 2)
    assert np.unravel_index(di.argmin(), di.shape) == (3, 0)


def test_still_clip_and_bad_input():
    assert not dynamic_image(np.full((5, 3, 3, 3), 77, np.uint8)).any()
    assert not dynamic_image(np.ones((1, 3, 3, 3))).any()  # one frame: α_1 = 0
    with pytest.raises(ValueError, match="expected frames"):
        dynamic_image(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="num_frames"):
        rank_pooling_coefficients(0)
