"""One helper for the augmentation tests: apply resolved settings to one array, as ``make_dataset`` would."""

import numpy as np


def apply_augment(settings, x: np.ndarray, rnd: int, seed: int = 0) -> np.ndarray:
    """``image_augment(resolve_augment(settings, True), x.shape, seed)`` on ``x`` with the draw ``rnd``."""
    import tensorflow as tf

    from kerasmer.data.pipeline.augment import image_augment, resolve_augment

    apply = image_augment(resolve_augment(settings, True), x.shape, seed)
    return apply(tf.constant(x), tf.constant(rnd, tf.int64)).numpy()
