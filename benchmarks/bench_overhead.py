"""Benchmark: the cost around the training step in ``kerasmer train``, against bare ``fit`` (issue 16, item 4).

One LOSO fold of the ``"demo"`` synthetic set goes through :func:`kerasmer.training.run` (what
``kerasmer train`` runs: the per-epoch pipeline, ``fit`` with validation, selection, the checkpoint).  After
each kerasmer epoch a hook runs, on a second model of the same architecture and optimizer and on the same
batches held in memory:

* **bare fit**: ``model.fit(x, y, validation_data=(xv, yv), epochs=1)``, the same batch size;
* **bare fit, autotune off**: the same ``fit`` on ``tf.data`` datasets of the same arrays with kerasmer's
  :func:`~kerasmer.data.pipeline_options` (tf.data's autotuning model off, as ``make_dataset`` sets it), so
  that the ratio also shows kerasmer's own cost without the autotuner's wait at the end of a ``fit`` call;
* **steps only**: ``train_on_batch`` over the epoch's batches, no validation.

The four are interleaved epoch by epoch (the hook's own time is not counted in the kerasmer epoch), and the
first epoch (tracing, filling the caches) is left out.  Then the same fold runs again *alone*, with a hook that
only reads the clock: kerasmer's training batches come from one iterator across epochs
(:class:`kerasmer.training.feed.EpochFeed`), which keeps preparing the next epoch's batches after a ``fit`` call
returns, so in the interleaved fold that work happened during the hook's bare fits and off kerasmer's clock.  The
ratios therefore use the alone fold's epochs: kerasmer / bare fit (the issue's goal for ``resnet3d18``: 1.1 or
less, validation included) and the *step share*, steps only / kerasmer epoch (its goal for ``learnet`` at the
recipe's batch: 0.7 or more).  Each model runs with ``checkpoint_every=0`` (a checkpoint after every epoch, as
before issue 16) and with the default, so the table shows what the checkpoint cadence changed.

Usage::

    python benchmarks/bench_overhead.py --json overhead.json           # learnet and resnet3d18, 12 epochs
    python benchmarks/bench_overhead.py --quick --no-wait              # seconds: checks that it runs
    python benchmarks/bench_overhead.py --models learnet --cadences 30 --augment '{"rotation": 0}'   # without rotation

Not a test: timings depend on the machine and its load; the harness (``benchmarks/_harness.py``) waits for a
quiet machine before each fold and records the load at every epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _harness import Harness, add_arguments, load1, print_table  # noqa: E402  (puts the checkout on sys.path)

import kerasmer  # noqa: E402
from kerasmer.training import TrainerHook  # noqa: E402

# model: (input shape or None for the registry's, batch size or None for the recipe's)
SETTINGS = {"learnet": (None, None), "resnet3d18": ((4, 32, 32, 3), 8)}


class Interleave(TrainerHook):
    """A trainer hook: after each kerasmer epoch, one bare-fit epoch and one steps-only epoch, timed."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.samples = {"kerasmer epoch": [], "bare fit": [], "bare fit, autotune off": [], "steps only": []}
        self.loads, self._since = [], None

    def on_model_built(self, trainer, state):
        import keras
        import numpy as np

        model = state.model
        self.bare = keras.models.clone_model(model)
        self.bare.compile(optimizer=model.optimizer.__class__.from_config(model.optimizer.get_config()),
                          loss=model.loss)
        batches = list(trainer.make_dataset(state, "train", training=True, seed=0).as_numpy_iterator())
        self.x = np.concatenate([b[0] for b in batches])
        self.y = np.concatenate([b[1] for b in batches])
        val = list(trainer.make_dataset(state, "val", training=False, seed=0).as_numpy_iterator())
        self.val = (np.concatenate([b[0] for b in val]), np.concatenate([b[1] for b in val])) if val else None
        self.batches = [(self.x[i:i + self.batch_size], self.y[i:i + self.batch_size])
                        for i in range(0, len(self.x), self.batch_size)]
        self.datasets = [_dataset(arrays, self.batch_size) if arrays is not None else None
                         for arrays in ((self.x, self.y), self.val)]
        self._since = time.perf_counter()

    def on_epoch_end(self, trainer, state, epoch, logs):
        kerasmer_s = time.perf_counter() - self._since
        t = time.perf_counter()
        self.bare.fit(self.x, self.y, batch_size=self.batch_size, validation_data=self.val, epochs=1,
                      shuffle=False, verbose=0)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        self.bare.fit(self.datasets[0], validation_data=self.datasets[1], epochs=1, shuffle=False, verbose=0)
        fit_off_s = time.perf_counter() - t
        t = time.perf_counter()
        for xb, yb in self.batches:
            self.bare.train_on_batch(xb, yb)
        steps_s = time.perf_counter() - t
        if epoch > 0:  # the first epoch traces and fills caches in both
            for key, value in zip(self.samples, (kerasmer_s, fit_s, fit_off_s, steps_s)):
                self.samples[key].append(value)
            self.loads.append(load1())
        self._since = time.perf_counter()


class EpochClock(TrainerHook):
    """A trainer hook that only times each epoch (fit call and end-of-epoch work), for the *alone* fold."""

    def __init__(self):
        self.samples, self.loads, self._since = [], [], None

    def on_model_built(self, trainer, state):
        self._since = time.perf_counter()

    def on_epoch_end(self, trainer, state, epoch, logs):
        now = time.perf_counter()
        if epoch > 0:
            self.samples.append(now - self._since)
            self.loads.append(load1())
        self._since = now


def _dataset(arrays, batch_size: int):
    """``arrays`` as batches of a ``tf.data`` dataset with kerasmer's dataset options."""
    import tensorflow as tf

    from kerasmer.data import pipeline_options

    return tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size).with_options(pipeline_options())


def fold_config(name: str, every: float, args, out: str):
    """The :class:`~kerasmer.training.RunConfig` of the measured fold: fold 01 of the demo set, ``args``' epochs,
    batch, precision and ``--augment`` (which replaces the recipe's augmentation through ``data_options``)."""
    from kerasmer.training import RunConfig, get_recipe

    shape, batch = SETTINGS.get(name, (None, None))
    batch = args.batch or batch or get_recipe(kerasmer.model_info(name).recipe or "quickstart").batch_size
    return RunConfig(model=name, data={"synthetic": None}, synthetic={"preset": "demo"}, folds=["01"],
                     input_shape=list(args.input_shape or shape) if (args.input_shape or shape) else None,
                     recipe_overrides={"epochs": args.epochs, "batch_size": batch,
                                       "early_stopping_patience": args.epochs + 1},
                     data_options={"augment": args.augment} if args.augment is not None else {},
                     precision=args.precision, output_dir=out, baselines=False, checkpoint_every=every)


def measure(harness: Harness, name: str, every: float, args, out: str) -> dict:
    """One fold of ``name`` with ``checkpoint_every=every``; the harness record of its interleaved epochs."""
    from kerasmer.training import run

    config = fold_config(name, every, args, out)
    batch = config.recipe_overrides["batch_size"]
    hook, clock = Interleave(batch), EpochClock()
    label = f"{name}, checkpoint_every={every:g}" + (f", augment={json.dumps(args.augment)}" if args.augment else "")
    wait = harness.wait_quiet(label)
    run(config, hooks=[hook], progress=False, log=lambda s: None)
    # The same fold again with nothing between its epochs: kerasmer's iterator across epochs (EpochFeed) keeps
    # preparing the next epoch's batches after a fit call returns, so in the interleaved fold it did that work
    # during the hook's bare fits, off the kerasmer clock.
    harness.wait_quiet(f"{label}, alone")
    run(dataclasses.replace(config, output_dir=out + "_alone"), hooks=[clock], progress=False, log=lambda s: None)
    return harness.record(label, {**hook.samples, "kerasmer epoch, alone": clock.samples}, unit="s/epoch",
                          wait=wait, loads=hook.loads + clock.loads,
                          higher_is_better=False, info={"batch": batch, "epochs": args.epochs,
                                                        "input_shape": config.input_shape, "augment": args.augment,
                                                        "train_clips": int(len(hook.x))})


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="learnet,resnet3d18", help="comma-separated models")
    p.add_argument("--epochs", type=int, default=12, help="epochs per fold (the first is left out)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: per model, else the recipe's)")
    p.add_argument("--input-shape", type=lambda s: [int(v) for v in s.split(",")], default=None)
    p.add_argument("--precision", default="float32")
    p.add_argument("--cadences", default="0,30", help="checkpoint_every values compared (default 0,30)")
    p.add_argument("--augment", type=json.loads, default=None, metavar="JSON",
                   help='augment settings replacing the recipe\'s, e.g. \'{"rotation": 0}\' (what augmenting costs)')
    add_arguments(p, rounds=1)
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.epochs, args.input_shape = "learnet", 3, [32, 32, 3]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    harness = Harness(args, "bench_overhead")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
        for name in args.models.split(","):
            for every in (float(v) for v in args.cadences.split(",")):
                rec = measure(harness, name, every, args, os.path.join(tmp, f"{name}_{every:g}"))
                c = {k: v["median"] for k, v in rec["configs"].items()}
                off, alone = c["bare fit, autotune off"], c["kerasmer epoch, alone"]
                rows.append((name, f"{every:g}", f"{c['kerasmer epoch']:.3f}", f"{alone:.3f}", f"{c['bare fit']:.3f}",
                             f"{off:.3f}", f"{c['steps only']:.3f}", f"{alone / c['bare fit']:.2f}",
                             f"{alone / off:.2f}", f"{c['steps only'] / alone:.2f}"))
    print_table("| model | checkpoint_every s | kerasmer epoch s, interleaved | kerasmer epoch s, alone | bare fit epoch s | "
                "bare fit, autotune off s | steps only s | kerasmer alone / bare fit | "
                "kerasmer alone / bare fit, autotune off | step share (steps only / kerasmer alone) |", rows)
    harness.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
