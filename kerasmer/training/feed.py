"""One ``tf.data`` iterator for many epochs' ``fit`` calls: the fold trainer's training and validation feeds.

kerasmer runs one ``fit`` call per epoch (checkpoints, selection and resumption happen between epochs), and each
``fit`` call creates an iterator for every dataset it is given.  A new iterator costs tf.data's graph rewrite and
the instantiation of the dataset's map functions, on which tf.data runs TensorFlow's graph optimiser (Grappler):
25-35 ms for the augmented training set of a small dynamic-image model, a third of LEARNet's three training steps
on the demo set.  An :class:`EpochFeed` opens one iterator over many epochs' batches
(``make_dataset(seed=[...])``) and gives each ``fit`` call a small dataset that reads exactly one epoch's batches
from it (:func:`reader`): the expensive iterator is opened once per chunk of epochs, and its prefetching carries
on across the epochs' boundaries.

Only without a ``tf.distribute`` strategy: a strategy may rewrite the dataset it is given (auto-sharding by
serialising its graph), which a captured iterator does not survive; under one, each epoch gets its own dataset.

Example:
    >>> feed = EpochFeed(lambda epochs: make_dataset(df, seed=[epoch_seed(0, e) for e in epochs], ...),
    ...                  steps=3, last_epoch=50)  # doctest: +SKIP
    >>> ds, steps = feed.epoch(0)  # doctest: +SKIP
    >>> model.fit(ds, steps_per_epoch=steps, callbacks=[feed.counter])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from kerasmer.data import pipeline_options


def single_pass(dataset) -> tuple:
    """``dataset`` as a ``fit`` or ``evaluate`` call reads it with a single iterator: ``(dataset, steps)``.

    Keras 3.15's epoch iterator, after the last step over a dataset of known cardinality, creates the next
    epoch's iterator at once.  kerasmer's ``fit`` calls run one epoch each, so that iterator, one for the
    training set and one for the validation set per epoch, was never read: it cost its creation (tf.data
    rewrites the dataset's graph, about 40 ms for a fresh training set) and started its prefetching (the
    augmentation of the first batch).  With the cardinality hidden and the steps passed instead
    (``steps_per_epoch``, ``validation_steps``), Keras reads exactly ``steps`` batches from one iterator.

    Args:
        dataset: a finite ``tf.data.Dataset``, e.g. from :func:`kerasmer.data.make_dataset`.

    Returns:
        ``(dataset, steps)``: the same batches with an unknown cardinality and their number; ``dataset``
        itself and ``None`` when its cardinality is unknown already (Keras then reads it once, to its end).

    Example:
        >>> ds, steps = single_pass(train_ds)  # doctest: +SKIP
        >>> model.fit(ds, steps_per_epoch=steps)  # doctest: +SKIP
    """
    steps = int(dataset.cardinality())
    if steps < 0:
        return dataset, None
    return dataset.filter(lambda *_: tf.constant(True)), steps


def reader(dataset, steps: int, *, repeat: bool = False):
    """A dataset of ``steps`` batches read from one iterator over ``dataset``, which stays open between reads.

    Each iteration of the returned dataset (one per ``fit`` or ``evaluate`` call) reads the *next* ``steps``
    batches: the iterator over ``dataset`` is opened here, once.  Its cardinality is hidden, so that Keras reads
    exactly ``steps_per_epoch`` batches from one iterator (:func:`single_pass`).

    Args:
        dataset: a ``tf.data.Dataset`` with at least as many batches as will be read.
        steps: batches per read.
        repeat: read ``dataset`` over and over (a validation set of ``steps`` batches: the same batches each read).

    Returns:
        The reading dataset.

    Example:
        >>> val = reader(val_ds, steps=2, repeat=True)  # doctest: +SKIP
        >>> model.evaluate(val, steps=2)  # doctest: +SKIP
        >>> model.evaluate(val, steps=2)  # the same two batches again  # doctest: +SKIP
    """
    iterator = iter(dataset.repeat() if repeat else dataset)
    batches, _ = single_pass(tf.data.Dataset.range(int(steps)).map(lambda _: iterator.get_next()))
    # a new dataset, so kerasmer's options again: with tf.data's autotuning model on, every fit call that
    # deleted its iterator over this waited for the autotuner's wake-up (epochs snapped to 5.11 s, 0.31 s ...)
    batches = batches.with_options(pipeline_options())
    batches.kerasmer_iterator = iterator  # the map captured its handle only: the iterator lives as long as this
    return batches


class BatchCounter(keras.callbacks.Callback):
    """Counts a ``fit`` call's training batches, so that a feed knows whether an epoch read all of its own."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


class EpochFeed:
    """A fold's training batches, epoch after epoch, from one iterator per ``chunk`` epochs.

    Args:
        build: ``fn(epochs) -> dataset``: the batches of those epochs (a list of epoch numbers) in turn, each
            epoch exactly ``steps`` batches, e.g. ``make_dataset(seed=[epoch_seed(s, e) for e in epochs])``.
        steps: batches per epoch.
        last_epoch: the epoch after the last one the fold may run (the plan).
        chunk: epochs per iterator (their orders are built up front: a bound on what an early stop wastes).

    Example:
        >>> feed = EpochFeed(build, steps=3, last_epoch=40)  # doctest: +SKIP
        >>> for epoch in range(40):
        ...     ds, steps = feed.epoch(epoch)  # also zeroes feed.counter
        ...     model.fit(ds, steps_per_epoch=steps, callbacks=[feed.counter])
        ...     feed.done(epoch)  # doctest: +SKIP
    """

    def __init__(self, build: Callable, steps: int, last_epoch: int, *, chunk: int = 32):
        self.build, self.steps, self.last_epoch, self.chunk = build, int(steps), int(last_epoch), int(chunk)
        self.counter = BatchCounter()
        self._batches, self._next, self._end = None, None, None

    def epoch(self, epoch: int) -> tuple:
        """``(dataset, steps)`` of ``epoch``'s batches; a new iterator unless ``epoch`` follows the last one read."""
        if self._batches is None or epoch != self._next or epoch >= self._end:
            self._end = min(self.last_epoch, epoch + self.chunk)
            self._batches = reader(self.build(list(range(epoch, max(self._end, epoch + 1)))), self.steps)
        self._next = None  # until done() confirms that the epoch read all of its batches
        self.counter.batches = 0
        return self._batches, self.steps

    def done(self, epoch: int) -> None:
        """After ``epoch``'s ``fit`` call: the next epoch continues the iterator if this one read all its batches."""
        self._next = epoch + 1 if self.counter.batches == self.steps else None


__all__ = ["BatchCounter", "EpochFeed", "reader", "single_pass"]
