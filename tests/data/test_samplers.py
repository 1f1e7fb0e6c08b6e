"""Samplers: lengths, ranges, apex placement and the edge cases (short clips, apex at an end)."""

import numpy as np
import pytest

from kerasmer.data.preprocess.samplers import (
    interpolate, sample_apex, sample_centered, sample_indices, sample_onset_apex, sample_uniform, take,
)

CASES = [(1, 0), (2, 0), (2, 1), (5, 0), (5, 4), (5, 2), (13, 6), (40, 0), (40, 39), (40, 11), (73, 30)]


@pytest.mark.parametrize("length,apex", CASES)
@pytest.mark.parametrize("n", [3, 4, 13, 20])
def test_uniform_passes_through_onset_apex_offset(length, apex, n):
    idx = sample_uniform(length, apex, n=n)
    assert idx.shape == (n,) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() <= length - 1
    assert np.all(np.diff(idx) >= 0), "frames must stay in temporal order"
    assert idx[0] == 0 and idx[-1] == length - 1 and apex in idx
    if length >= n:  # enough frames: no frame is used twice
        assert len(np.unique(idx)) == n
    else:  # a short clip uses every frame it has
        assert set(idx.tolist()) == set(range(length))


def test_uniform_splits_frames_by_duration():
    idx = sample_uniform(101, 25, n=13)  # rise 25 frames, fall 75: 3 of 12 gaps before the apex
    before = np.sum(idx < 25)
    assert before == 3
    assert np.allclose(np.diff(idx[idx <= 25]), 25 / 3, atol=1)


@pytest.mark.parametrize("length,apex", CASES)
@pytest.mark.parametrize("n", [1, 4, 16, 17])
def test_centered_keeps_apex_in_middle_and_replicates_edges(length, apex, n):
    idx = sample_centered(length, apex, n=n)
    assert idx.shape == (n,)
    assert idx[n // 2] == apex
    assert idx.min() >= 0 and idx.max() <= length - 1
    steps = np.diff(idx)
    assert np.all((steps == 0) | (steps == 1)), "consecutive frames, repeated only at the edges"
    inside = (np.arange(n) - n // 2 + apex >= 0) & (np.arange(n) - n // 2 + apex <= length - 1)
    assert np.all(idx[~inside] == np.where(np.arange(n)[~inside] < n // 2, 0, length - 1))


def test_apex_and_pair():
    assert sample_apex(30, 29).tolist() == [29]
    assert sample_onset_apex(30, 0).tolist() == [0, 0]
    assert sample_onset_apex(30, 7).tolist() == [0, 7]
    assert sample_indices("onset_apex", 9, 3).tolist() == [0, 3]
    assert np.array_equal(sample_indices("uniform", 50, 10, n=7), sample_uniform(50, 10, n=7))


def test_interpolate_endpoints_and_values():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 255, (5, 4, 3, 3), dtype=np.uint8)
    out = interpolate(clip, 9)
    assert out.shape == (9, 4, 3, 3) and out.dtype == np.float32
    assert np.array_equal(out[0], clip[0].astype(np.float32)) and np.array_equal(out[-1], clip[-1].astype(np.float32))
    # 9 points over 5 frames: odd outputs sit half-way between two inputs
    assert np.allclose(out[1], (clip[0].astype(np.float32) + clip[1]) / 2)
    assert np.allclose(out[2], clip[1])
    down = interpolate(clip, 3)
    assert np.allclose(down[1], clip[2])
    one = interpolate(clip[:1], 4)
    assert one.shape == (4, 4, 3, 3) and np.all(one == clip[0])


def test_take_and_errors():
    assert take(np.arange(10) * 2, [0, 3, 3]).tolist() == [0, 6, 6]
    with pytest.raises(IndexError, match="outside a clip of 10"):
        take(np.arange(10), [10])
    with pytest.raises(ValueError, match="clip casme2/01/EP01: zero-length"):
        sample_uniform(0, 0, clip_id="casme2/01/EP01")
    with pytest.raises(ValueError, match="clip casme2/01/EP01: apex position 5 lies outside"):
        sample_centered(5, 5, clip_id="casme2/01/EP01")
    with pytest.raises(ValueError, match="apex position -1"):
        sample_apex(5, -1)
    with pytest.raises(ValueError, match="n must be a positive int"):
        sample_uniform(5, 2, n=0)
    with pytest.raises(ValueError, match="non-empty clip"):
        interpolate(np.zeros((0, 4, 4)), 3, clip_id="x")
    with pytest.raises(ValueError, match="sampler must be one of"):
        sample_indices("random", 5, 2)


# ----------------------------------------------------------------- apex_middle (shallow models, issue 13)


@pytest.mark.parametrize("length,apex", [(40, 3), (40, 20), (40, 36), (13, 0), (13, 12), (5, 2), (101, 25)])
def test_apex_middle_puts_the_apex_at_the_same_token_for_early_central_and_late_apexes(length, apex):
    """Upadhy & Verlekar §2: onset, 5 frames, apex, 5 frames, offset = 13; the apex is always index 6."""
    idx = sample_indices("apex_middle", length, apex, n=13)
    assert idx.shape == (13,) and idx[6] == apex
    assert idx[0] == 0 and idx[-1] == length - 1
    assert np.all(np.diff(idx) >= 0)
    assert np.all(idx[:6] <= apex) and np.all(idx[7:] >= apex)
    if apex >= 6 and length - 1 - apex >= 6:  # room for 5 distinct frames on each side
        assert len(np.unique(idx)) == 13


def test_the_proportional_sampler_moves_the_apex_but_apex_middle_does_not():
    # the old default for the shallow models: the apex index follows the rise/fall ratio
    places = {int(np.flatnonzero(sample_uniform(40, a, n=13) == a)[0]) for a in (3, 20, 36)}
    assert len(places) == 3
    assert {int(sample_indices("apex_middle", 40, a, n=13)[6] == a) for a in (3, 20, 36)} == {1}


def test_shallow_models_use_apex_middle_and_read_its_apex_token():
    import kerasmer

    for name in kerasmer.list_models("shallow_*"):
        info = kerasmer.model_info(name)
        assert info.sampler == "apex_middle" and info.input_shape[0] == 13, name
    model = kerasmer.build_model("shallow_conv2d_mhsa", num_classes=5, input_shape=(13, 30, 30, 3))
    assert model.get_layer("apex_token").index == 13 // 2  # the token the sampler puts the apex at
