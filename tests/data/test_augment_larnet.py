"""LARNet's augmentation (§4.2.1, after Wang et al.'s CIFAR recipe): pad by 4 and crop back, both flips."""

import numpy as np
import pytest

from kerasmer.data.pipeline.augment import make_augment, resolve_augment
from tests.data.augment_util import apply_augment as _apply

OFF = {"flip": False, "rotation": 0.0, "brightness": 0.0}


def test_vertical_flip_is_up_down_with_probability_one_half():
    x = np.random.default_rng(0).uniform(0, 255, (6, 5, 3)).astype(np.float32)
    flipped = []
    for rnd in range(80):
        y = _apply({**OFF, "vertical_flip": True}, x, rnd)
        assert np.array_equal(y, x) or np.array_equal(y, x[::-1]), rnd
        flipped.append(np.array_equal(y, x[::-1]))
    assert 20 <= sum(flipped) <= 60
    clip = np.stack([x, x + 1.0])  # a clip: every frame flipped alike
    for rnd in range(6):
        yc = _apply({**OFF, "vertical_flip": True}, clip, rnd)
        np.testing.assert_allclose(yc[1] - yc[0], 1.0, atol=1e-4)


def test_pad_crop_is_a_crop_of_the_zero_padded_image_at_every_offset():
    x = np.random.default_rng(1).uniform(1, 255, (7, 6, 3)).astype(np.float32)  # no zeros: the padding shows
    padded = np.pad(x, ((2, 2), (2, 2), (0, 0)))
    crops = {(i, j): padded[i:i + 7, j:j + 6] for i in range(5) for j in range(5)}
    seen = set()
    for rnd in range(200):
        y = _apply({**OFF, "pad_crop": 2}, x, rnd)
        hits = [k for k, c in crops.items() if np.array_equal(y, c)]
        assert len(hits) == 1, rnd
        seen.add(hits[0])
    assert len(seen) >= 20 and {(0, 0), (4, 4)} <= seen  # the offsets span 0..2 pad on both axes
    clip = np.stack([x, x + 1.0])
    yc = _apply({**OFF, "pad_crop": 2}, clip, 3)
    assert yc.shape == clip.shape
    assert np.array_equal(yc[0] == 0, yc[1] == 0)  # one offset for every frame


def test_new_keys_off_keep_old_outputs_and_are_checked():
    x = np.random.default_rng(2).uniform(0, 255, (8, 8, 3)).astype(np.float32)
    base = {"flip": True, "rotation": 5.0, "brightness": 0.1}
    for rnd in range(3):
        np.testing.assert_array_equal(_apply({**base, "vertical_flip": False, "pad_crop": 0}, x, rnd),
                                      _apply(base, x, rnd))
    with pytest.raises(ValueError, match="pad_crop"):
        resolve_augment({"pad_crop": 2.5}, True)
    with pytest.raises(ValueError, match="pad_crop"):
        resolve_augment({"pad_crop": -1}, True)
    for key, value in (("vertical_flip", True), ("pad_crop", 4)):
        with pytest.raises(ValueError, match=f"{key}.*flow"):
            make_augment(resolve_augment({key: value}, True), (8, 8, 3), 0, "flow", user_keys=(key,))


def test_larnet_recipe_carries_the_papers_augmentation():
    from kerasmer.training.recipes import get_recipe

    recipe = get_recipe("larnet")
    settings = resolve_augment(recipe.augment, True)
    assert settings["flip"] and settings["vertical_flip"] and settings["pad_crop"] == 4
    assert settings["rotation"] == 0 and settings["brightness"] == 0
    assert "padded by four pixels" in recipe.sources["augment"]
