"""The epoch feed: one iterator read epoch by epoch, handed over cleanly at chunk ends, short reads and jumps."""

import numpy as np
import tensorflow as tf

from kerasmer.training.feed import EpochFeed, reader

STEPS = 3


def _epochs(epochs):
    """Epoch e's batches are e*10 + 0, 1, 2: a batch says which epoch and step it is."""
    return tf.data.Dataset.from_tensor_slices(np.array([[e * 10 + k for k in range(STEPS)] for e in epochs]).ravel())


def _read(ds, n=None):
    it = iter(ds)
    return [int(next(it)) for _ in range(n)] if n is not None else [int(v) for v in it]


def test_reader_reads_on_where_it_stopped_and_repeats_a_validation_set():
    ds = reader(tf.data.Dataset.range(10), steps=3)
    assert _read(ds) == [0, 1, 2] and _read(ds) == [3, 4, 5]
    assert int(ds.cardinality()) < 0  # hidden: Keras reads steps_per_epoch batches from one iterator
    # kerasmer's options (the autotuning model off), or each fit call would wait for it when it ends
    assert ds.options().autotune.enabled is False
    val = reader(tf.data.Dataset.range(2), steps=2, repeat=True)
    assert _read(val) == [0, 1] and _read(val) == [0, 1] and _read(val) == [0, 1]


def test_the_feed_continues_one_iterator_and_opens_another_when_it_must():
    calls = []

    def build(epochs):
        calls.append(list(epochs))
        return _epochs(epochs)

    feed = EpochFeed(build, steps=STEPS, last_epoch=7, chunk=3)

    def epoch(e, read=STEPS):
        ds, steps = feed.epoch(e)
        assert steps == STEPS
        got = _read(ds, read)
        feed.counter.batches = read  # what Keras' batch callback counts
        feed.done(e)
        return got

    assert [epoch(e) for e in (0, 1, 2)] == [[0, 1, 2], [10, 11, 12], [20, 21, 22]]
    assert calls == [[0, 1, 2]]  # one iterator for the chunk
    assert epoch(3) == [30, 31, 32] and calls[-1] == [3, 4, 5]  # the chunk ended: the next one
    assert epoch(4, read=2) == [40, 41]  # a short epoch (a callback stopped it) ...
    assert epoch(5) == [50, 51, 52] and calls[-1] == [5, 6]  # ... shifts nothing: a new iterator, at epoch 5
    assert epoch(2) == [20, 21, 22] and calls[-1] == [2, 3, 4]  # a jump (a resumed fold): anew
    feed.epoch(6)
    assert calls[-1] == [6]  # the plan's last epoch bounds the chunk
