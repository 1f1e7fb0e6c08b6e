"""LEARNet's augmentation (§IV): rotations on a 15° grid in ±45°, histogram equalisation, flips."""

import math

import cv2
import numpy as np
import pytest

from kerasmer.data.pipeline.augment import equalize_histogram, make_augment, resolve_augment
from tests.data.augment_util import apply_augment as _apply

OFF = {"flip": False, "rotation": 0.0, "brightness": 0.0}


def _images():
    rng = np.random.default_rng(3)
    wide = rng.integers(0, 256, (17, 13, 3))
    narrow = rng.integers(90, 140, (16, 16, 3))  # low contrast: what equalisation stretches
    skewed = np.minimum(rng.exponential(20.0, (12, 20, 3)), 255).astype(int)
    constant = narrow.copy()
    constant[..., 1] = 77  # one level only: OpenCV leaves the channel as it is
    return [a.astype(np.uint8) for a in (wide, narrow, skewed, constant)]


@pytest.mark.parametrize("index", range(4))
def test_equalize_is_opencvs_equalizehist_per_channel(index):
    image = _images()[index]
    ours = equalize_histogram(image.astype(np.float32)).numpy()
    theirs = np.stack([cv2.equalizeHist(np.ascontiguousarray(image[..., c])) for c in range(3)], axis=-1)
    np.testing.assert_array_equal(ours, theirs.astype(np.float32))


def test_equalize_works_frame_by_frame_on_a_clip_and_floors_fractions():
    images = _images()[:3]
    clip = np.stack([i[:12, :12] for i in images]).astype(np.float32)  # (T, H, W, C)
    ours = equalize_histogram(clip + 0.4).numpy()  # a fraction does not change a value's level
    for t in range(3):
        np.testing.assert_array_equal(ours[t], equalize_histogram(clip[t]).numpy())
    assert ours.shape == clip.shape


def test_rotation_step_draws_only_the_grid_and_every_angle_of_it():
    import tensorflow as tf

    from kerasmer.data.pipeline.augment import _rotate

    x = np.random.default_rng(0).uniform(0, 255, (9, 11, 3)).astype(np.float32)
    grid = {k: _rotate(tf.constant(x), tf.constant(math.radians(15 * k))).numpy() for k in range(-3, 4)}
    seen = set()
    for rnd in range(60):
        y = _apply({**OFF, "rotation": 45.0, "rotation_step": 15.0}, x, rnd)
        hits = [k for k, g in grid.items() if np.array_equal(y, g)]
        assert len(hits) == 1, rnd  # exactly one of -45, -30, ..., 45 degrees, bit for bit
        seen.add(hits[0])
    assert seen == set(grid)
    # rotation_step 0 (the default) keeps the continuous draw of earlier versions: the same outputs
    for rnd in range(3):
        np.testing.assert_array_equal(_apply({**OFF, "rotation": 5.0, "rotation_step": 0.0}, x, rnd),
                                      _apply({**OFF, "rotation": 5.0}, x, rnd))


def test_equalize_probability_and_zero_keeps_old_outputs():
    x = _images()[1].astype(np.float32)
    equalised = equalize_histogram(x).numpy()
    outcomes = []
    for rnd in range(100):
        y = _apply({**OFF, "equalize": 0.5}, x, rnd)
        assert np.array_equal(y, x) or np.array_equal(y, equalised), rnd
        outcomes.append(np.array_equal(y, equalised))
    assert 30 <= sum(outcomes) <= 70
    base = {"flip": True, "rotation": 5.0, "brightness": 0.1}
    for rnd in range(3):
        np.testing.assert_array_equal(_apply({**base, "equalize": 0.0}, x, rnd), _apply(base, x, rnd))


def test_bad_values_and_flow_are_refused_by_name():
    with pytest.raises(ValueError, match="rotation_step"):
        resolve_augment({"rotation": 10.0, "rotation_step": 15.0}, True)
    with pytest.raises(ValueError, match="equalize"):
        resolve_augment({"equalize": 1.5}, True)
    settings = resolve_augment({"equalize": 0.5}, True)
    with pytest.raises(ValueError, match="equalize.*flow"):
        make_augment(settings, (8, 8, 3), 0, "flow", user_keys=("equalize",))
    # flow takes the angle grid too (its own rotation turns the vectors): a quarter turn of a constant field
    import tensorflow as tf

    field = np.zeros((8, 8, 3), np.float32)
    field[..., 0] = 1.0  # u = 1 everywhere
    apply = make_augment(resolve_augment({"flip": False, "rotation": 90.0, "rotation_step": 90.0}, True),
                         field.shape, 0, "flow")
    us = {round(float(apply(tf.constant(field), tf.constant(r, tf.int64)).numpy()[4, 4, 0]), 4) for r in range(30)}
    assert us == {0.0, 1.0}  # angles -90, 0, 90 only: u is cos(angle), never a value between


def test_learnet_recipe_carries_the_papers_pool():
    from kerasmer.training.recipes import get_recipe

    recipe = get_recipe("learnet")
    settings = resolve_augment(recipe.augment, True)  # valid as make_dataset will resolve it
    assert (settings["rotation"], settings["rotation_step"], settings["flip"]) == (45.0, 15.0, True)
    assert settings["equalize"] == 0.5 and settings["brightness"] == 0.0
    assert "increment of 15°" in recipe.sources["augment"]
