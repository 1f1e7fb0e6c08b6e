"""Benchmark: clips per second of the input pipeline reading from the preprocessing cache,
against the training-step rate of ``learnet`` and of one clip model.

The issue's requirement: the pipeline must not be the bottleneck, i.e. it must
deliver at least 3x the clips per second the model trains on.

What is timed:

1. *Preprocessing, once* (for information): building every clip's input
   (decode, dynamic image / frame sampling / optical flow) without the cache.
   Thanks to :class:`~kerasmer.data.pipeline.cache.PreprocessCache` this runs once per
   dataset and config, so it is not part of the per-epoch rate.
2. *Pipeline from the cache*: a ``tf.data`` pipeline shaped like
   :func:`kerasmer.data.make_dataset`'s (parallel read of the cache files ->
   shuffle -> [augment] -> normalize -> batch -> prefetch), iterated over
   several epochs, without and with the pipeline's augmentation; clips per
   second.  (The flow row uses the image augmentation for its cost only: a
   real flow augmentation must negate u on a flip.)
3. *Training step*: ``model.train_on_batch`` on a fixed batch; clips per second
   = batch size / median step time (after warm-up steps).

Usage::

    python benchmarks/bench_pipeline.py                     # learnet + shallow_conv3d_mhsa
    python benchmarks/bench_pipeline.py --clip-model resnet3d18 --write docs/_fragments/benchmarks_pipeline.md

Through ``benchmarks/_harness.py``: a wait for a quiet machine before each
row, training and the two pipelines interleaved round by round, medians of
``--rounds`` rounds and their ratios, the machine and the load beside each row
(``--json`` writes it all).  ``--quick --no-wait`` runs a tiny set in seconds
(to check the script works).  Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _harness import Harness, add_arguments  # noqa: E402  (it also puts the checkout on sys.path)


def make_pipeline(cache, build, df, input_shape, *, batch_size, epochs, augment=None):
    """A callable that iterates a make_dataset-shaped tf.data pipeline reading the cache; returns clips/s.

    ``augment``: ``None`` (no augmentation) or ``"element"`` (the pipeline's own
    per-clip augmentation, applied as ``make_dataset`` applies it).  One warm-up
    pass (tracing, autotuning) is run here.
    """
    import tensorflow as tf

    from kerasmer.data import pipeline_options
    from kerasmer.data.pipeline.augment import DEFAULT_AUGMENT, image_augment

    rows = [row for _, row in df.iterrows()]
    shape = tuple(input_shape)
    # PreprocessCache.dataset reads the .npy files with TensorFlow ops (no GIL); indices
    # stand in for the labels make_dataset zips in.
    ds = tf.data.Dataset.zip((cache.dataset(df, build, shape), tf.data.Dataset.range(len(rows))))
    ds = ds.shuffle(len(rows), seed=0, reshuffle_each_iteration=True).repeat(epochs)
    rnd = tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True)
    if augment == "element":
        apply = image_augment(DEFAULT_AUGMENT, shape, 0)
        ds = tf.data.Dataset.zip((ds, rnd)).map(lambda xy, r: (apply(xy[0], r), xy[1]),
                                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, i: ((x - 127.0) / 64.0, i), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE).with_options(pipeline_options())  # as make_dataset sets them

    def run():
        t = time.perf_counter()
        for _ in ds:
            pass
        return len(rows) * epochs / (time.perf_counter() - t)

    run()  # warm-up: first-iteration tracing and autotuning
    return run


def make_trainer(name, input_shape, *, batch_size, steps):
    """A callable timing ``steps`` model.train_on_batch calls of a registered model; returns clips/s."""
    import keras
    import numpy as np

    from kerasmer import build_model

    model = build_model(name, num_classes=3, input_shape=tuple(input_shape))
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, *input_shape)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, batch_size), 3).astype("float32")
    for _ in range(2):  # tracing and allocation
        model.train_on_batch(x, y)

    def run():
        t = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        return batch_size * steps / (time.perf_counter() - t)

    return run


def measure_case(harness, case, df, work, args, trainers) -> tuple:
    """One row: preprocessing once (for information), then pipeline and training interleaved in one block."""
    from kerasmer.data import PreprocessCache

    label, model, modality, build, shape = case
    config = {"modality": modality, "input_shape": list(shape), **(getattr(build, "config", None) or {})}
    cache = PreprocessCache(work / "cache", config=config, annotation=df)
    t = time.perf_counter()  # the preprocessing itself, without the cache (it may be filled already)
    for _, row in df.iterrows():
        build(row, shape)
    cold = len(df) / (time.perf_counter() - t)
    cache.warm(df, build, shape)
    if model not in trainers:
        trainers[model] = make_trainer(model, shape, batch_size=args.batch_size, steps=args.steps)
    kw = dict(batch_size=args.batch_size, epochs=args.epochs)
    block = harness.block(f"{label} pipeline vs training", {
        "training step": trainers[model],
        "pipeline from cache": make_pipeline(cache, build, df, shape, **kw),
        "pipeline from cache, augmented": make_pipeline(cache, build, df, shape, augment="element", **kw),
    }, unit="clips/s", info={"modality": modality, "input_shape": list(shape), "preprocess_clips_per_s": cold})
    medians = [block["configs"][k]["median"] for k in
               ("pipeline from cache", "pipeline from cache, augmented", "training step")]
    print(f"{label:20s} {modality:13s} {str(shape):16s} preprocess {cold:6.1f} | pipeline from cache "
          f"{medians[0]:7.1f} plain, {medians[1]:7.1f} augmented | train {medians[2]:7.1f} clips/s")
    return (label, modality, shape, cold, *medians, block["load_before"], block["load_after"])


def markdown(results, df, args, harness) -> str:
    """The results as the Markdown section of docs/benchmarks.md, the load beside each row."""
    m = harness.machine
    lines = [
        "## Input pipeline vs. training step",
        "",
        f"Measured with `python benchmarks/bench_pipeline.py` (TensorFlow {m.get('tensorflow')}, Python "
        f"{m['python']}, {m['cpu']}, {m['logical_cpus']} logical CPUs).",
        f"{len(df)} synthetic clips, batch size {args.batch_size}; medians of {args.rounds} interleaved rounds "
        "(training, pipeline, pipeline augmented); the 1-minute load before and after each row.",
        "Pipeline: read the `.npy` files from the cache (`PreprocessCache.dataset`), shuffle, [augment], "
        "normalize, batch, prefetch; *augmented* adds `make_dataset`'s flip/rotation/brightness "
        "(`image_augment`, one transform per clip).  No in-memory `.cache()`: every epoch reads the files.",
        "Training: `model.train_on_batch` (Adam), clips/s over the steps of a round.",
        "",
        "| model | modality | input | preprocessing, once | pipeline from cache | pipeline from cache, augmented "
        "| training step | ratio | ratio, augmented | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, modality, shape, cold, plain, elem, train, before, after in results:
        lines.append(f"| {label} | {modality} | {'x'.join(map(str, shape))} | {cold:.1f} | {plain:.1f} | "
                     f"{elem:.1f} | {train:.1f} | {plain / train:.1f}x | {elem / train:.1f}x | {before} → {after} |")
    verdict = {name: all(r[col] >= 3 * r[6] for r in results)
               for name, col in (("without augmentation", 4), ("with augmentation", 5))}
    lines += ["", "Rates in clips per second.  Requirement (pipeline >= 3x the training rate), every row: "
              + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in verdict.items()) + "."]
    return "\n".join(lines) + "\n", all(verdict.values())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip-model", default="shallow_conv3d_mhsa", help="registered clip model (default %(default)s)")
    p.add_argument("--subjects", type=int, default=4)
    p.add_argument("--clips-per-class", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=4, help="pipeline epochs per round")
    p.add_argument("--steps", type=int, default=5, help="training steps per round")
    p.add_argument("--work", default=None, help="folder for the synthetic set and the cache (default: a temp dir)")
    p.add_argument("--write", default=None, help="write the Markdown results to this file")
    add_arguments(p, rounds=3)
    args = p.parse_args(argv)
    overrides = {}
    if args.quick:  # seconds: 2 subjects, 1 clip per class, small frames, one epoch / step per round
        args.subjects, args.clips_per_class, args.batch_size, args.epochs, args.steps = 2, 1, 2, 1, 1
        args.rounds, overrides = 2, {"image_size": (64, 64)}

    import tensorflow  # noqa: F401  (before the harness, so it records TensorFlow's version)

    from kerasmer.data import INPUT_BUILDERS, make_flow_builder, make_synthetic, read_dataset
    from kerasmer.models.registry import model_info

    harness = Harness(args, "bench_pipeline")
    work = Path(args.work or tempfile.mkdtemp(prefix="kerasmer_bench_"))
    root = make_synthetic(work / "synthetic", subjects=args.subjects, clips_per_class=args.clips_per_class, seed=0,
                          **overrides)
    df = read_dataset("casme2", root)
    print(f"{len(df)} synthetic clips (CASME II layout, 200 fps); work folder {work}")

    clip_info = model_info(args.clip_model)
    cases = [  # (label, model, modality, builder, input shape)
        ("learnet", "learnet", "dynamic_image", INPUT_BUILDERS["dynamic_image"], model_info("learnet").input_shape),
        (args.clip_model, args.clip_model, "clip", INPUT_BUILDERS["clip"], clip_info.input_shape),
        ("learnet on flow", "learnet", "flow", make_flow_builder(), model_info("learnet").input_shape),
    ]
    trainers = {}
    results = [measure_case(harness, case, df, work, args, trainers) for case in cases]
    text, ok = markdown(results, df, args, harness)
    print("\n" + text)
    harness.report()
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)
        print(f"written to {args.write}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
