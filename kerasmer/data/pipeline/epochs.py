"""One epoch of training batches, drawn by a seed: the order (shuffled or class-balanced), the augmentation,
and many epochs in one dataset, for :func:`kerasmer.data.make_dataset`.

The parts that no seed changes (the labels, the source of inputs, the cached inputs, the traced
augmentation) come from ``tfdata._fixed_parts``; this module draws what a seed changes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

BALANCE_CHOICES = (False, True, "epoch", "oversample")


def class_counts(df: pd.DataFrame, class_names, label_column: str) -> list[int]:
    if label_column not in df.columns:
        raise KeyError(f"make_dataset: DataFrame has no label column {label_column!r}")
    counts = df[label_column].value_counts()
    return [int(counts.get(c, 0)) for c in class_names]


def epoch_draws(class_counts: Sequence[int], balance=False) -> int:
    """How many clips one training epoch draws, given the clips per class and the ``balance`` mode.

    Args:
        class_counts: clips of each class in the training set (zeros allowed).
        balance: ``False`` or ``True``/``"epoch"`` (as many draws as clips), or
            ``"oversample"`` (every present class as often as the largest:
            ``classes present × largest count``).

    Returns:
        Draws per epoch (the fold trainer's steps per epoch are ``ceil(draws / batch)``).

    Raises:
        ValueError: an unknown ``balance`` (named with the choices).

    Example:
        >>> epoch_draws([5, 2, 1], "oversample"), epoch_draws([5, 2, 1], True)
        (15, 8)
    """
    if not any(balance is c or (isinstance(balance, str) and balance == c) for c in BALANCE_CHOICES):
        raise ValueError(f"balance must be one of {BALANCE_CHOICES}, got {balance!r}")
    counts = [int(c) for c in class_counts]
    if balance == "oversample":
        return sum(1 for c in counts if c > 0) * max(counts, default=0)
    return sum(counts)


def draw_epoch(fixed: dict, *, draws: int, training: bool, balance, seed: int):
    """One epoch's order, drawn by ``seed`` on the fixed parts: shuffled or class-balanced, not yet augmented.

    Args:
        fixed: ``tfdata._fixed_parts``' dict.
        draws, training, balance, seed: as in :func:`~kerasmer.data.make_dataset` (``draws`` from :func:`epoch_draws`).

    Returns:
        The unbatched dataset of ``(x, y)``; with augmentation ``((x, y), rnd, seed)``: one fresh random number
        per element and epoch (seeded), and the seed as data, so that :func:`augment_epoch`'s map, traced once,
        serves every epoch.

    Example:
        >>> order = draw_epoch(fixed, draws=72, training=True, balance=False, seed=3)  # doctest: +SKIP
        >>> ds = augment_epoch(order, fixed, False).batch(25)  # doctest: +SKIP
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    if balance:
        ds = _balanced(fixed["source"], fixed["labels"], draws, seed)
    else:
        ds = fixed["inputs"]  # normalised already, unless augmentation comes first
        if training:
            ds = ds.shuffle(len(fixed["labels"]), seed=seed, reshuffle_each_iteration=True)
    if fixed["augment"] is None:
        return ds
    rnd = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((ds, rnd, tf.data.Dataset.from_tensors(tf.constant(seed, tf.int64)).repeat()))


def augment_epoch(ds, fixed: dict, balance):
    """:func:`draw_epoch`'s elements augmented (``fixed["augment"]``: augmentation, then normalisation), or
    normalised where the fixed part has not done it (balanced draws); ``(x, y)`` elements.  One map: each map
    costs a trace per dataset."""
    import tensorflow as tf  # heavy: loads only when a dataset is built

    fn, normalize = fixed["augment"], fixed["normalize"]
    if fn is not None:
        return ds.map(lambda xy, r, seed: (fn(xy[0], r, seed), xy[1]), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)
    if balance and normalize is not None:
        return ds.map(lambda x, y: (normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds


def chain_epochs(fixed: dict, seeds: list, *, draws: int, training: bool, balance, batch_size: int):
    """The batches of each seed's epoch in turn: :func:`draw_epoch` per seed (built here, with the seeds as
    Python ints, exactly as for one epoch), then one :func:`augment_epoch` and ``batch`` traced for all of them.

    Why: a new iterator instantiates its dataset's map functions, and tf.data runs TensorFlow's graph
    optimiser (Grappler) on each: 25-35 ms for the augmentation at every epoch's ``fit`` when each epoch had its
    own dataset.  Here one iterator instantiates the augmentation once for all the seeds' epochs.

    Returns:
        A dataset of batches (unknown cardinality); the epochs do not share a batch.

    Example:
        >>> ds = chain_epochs(fixed, [11, 12], draws=72, training=True, balance=False, batch_size=25)  # doctest: +SKIP
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    if not seeds:
        raise ValueError("make_dataset: seed is an empty sequence; give an int or at least one seed")
    orders = [draw_epoch(fixed, draws=draws, training=training, balance=balance, seed=s) for s in seeds]
    spec = orders[0].element_spec
    variants = tf.stack([tf.data.experimental.to_variant(order) for order in orders])
    return tf.data.Dataset.from_tensor_slices(variants).flat_map(
        lambda v: augment_epoch(tf.data.experimental.from_variant(v, spec), fixed, balance).batch(batch_size))


def seeded_batches(fixed: dict, seed, *, draws: int, training: bool, balance, batch_size: int):
    """The batches that ``seed`` draws on ``tfdata._fixed_parts``' dict: one epoch for an int, each seed's epoch
    in turn (:func:`chain_epochs`) for a sequence.

    Example:
        >>> ds = seeded_batches(fixed, [11, 12], draws=72, training=True, balance=False,
        ...                     batch_size=25)  # doctest: +SKIP
    """
    if isinstance(seed, (int, np.integer)):
        return augment_epoch(draw_epoch(fixed, draws=draws, training=training, balance=balance, seed=int(seed)),
                             fixed, balance).batch(batch_size)
    return chain_epochs(fixed, [int(s) for s in seed], draws=draws, training=training, balance=balance,
                        batch_size=batch_size)


def _balanced(source, labels: np.ndarray, n: int, seed: int):
    """``n`` class-balanced draws: blocks of one clip of every class present, in a seeded order per block.

    With ``n = classes × largest count`` (``"oversample"``) every class gets exactly ``n / classes`` draws:
    the largest class's reshuffled cycle is read once through, so each of its clips appears once.
    """
    import tensorflow as tf  # heavy: loads only when a dataset is built

    present = [c for c in range(labels.shape[1]) if labels[:, c].any()]
    # No .cache() here: an epoch stops part-way through a class's cycle, and tf.data drops a
    # partly read cache; the in-process memo (or cache_dir's files) spares the decoding instead.
    per_class = []
    for c in present:
        idx = np.flatnonzero(labels[:, c])
        per_class.append(source(idx, False).shuffle(len(idx), seed=seed + 1 + c,
                                                    reshuffle_each_iteration=True).repeat())
    # blocks of one draw per class, in a new seeded order per block: exactly balanced up to one block
    choice = tf.data.Dataset.range(len(present)).shuffle(len(present), seed=seed,
                                                         reshuffle_each_iteration=True).repeat()
    draws = tf.data.Dataset.choose_from_datasets(per_class, choice).take(n)
    return draws.apply(tf.data.experimental.assert_cardinality(n))  # the sources repeat: exactly n draws


__all__ = ["BALANCE_CHOICES", "augment_epoch", "chain_epochs", "class_counts", "draw_epoch", "epoch_draws",
           "seeded_batches"]
