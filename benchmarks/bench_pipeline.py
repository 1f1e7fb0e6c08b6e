"""Benchmark: clips per second of the input pipeline reading from the preprocessing cache,
against the training-step rate of ``learnet`` and of one clip model.

The issue's requirement: the pipeline must not be the bottleneck, i.e. it must
deliver at least 3x the clips per second the model trains on.

What is timed:

1. *Preprocessing, cold* (for information): building every clip's input once
   (decode, dynamic image / frame sampling / optical flow) and writing it to a
   :class:`~kerasmer.data.cache.PreprocessCache`.  This runs once per dataset
   and config, so it is not part of the per-epoch rate.
2. *Pipeline from the cache*: a ``tf.data`` pipeline shaped like
   :func:`kerasmer.data.make_dataset`'s (parallel load from the cache ->
   shuffle -> augment -> normalize -> batch -> prefetch), iterated over
   several epochs; clips per second.
3. *Training step*: ``model.train_on_batch`` on a fixed batch; clips per second
   = batch size / median step time (after warm-up steps).

Usage::

    python benchmarks/bench_pipeline.py                     # learnet + shallow_conv3d_mhsa
    python benchmarks/bench_pipeline.py --clip-model resnet3d18 --write docs/_fragments/benchmarks_pipeline.md

Medians of ``--repeats`` timings are reported.  Not a test: timings depend on
the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def batched_augment(settings, input_shape, seed: int):
    """Prototype: the pipeline's flip/rotation/brightness applied to a whole batch in one op each.

    Each clip still gets its own random transform (one per batch element, the
    same for all frames of a clip), but the affine warp runs once per batch
    instead of once per clip.
    """
    import math

    import keras
    import tensorflow as tf

    clip = len(input_shape) == 4
    h, w = (input_shape[1:3] if clip else input_shape[:2])
    max_angle = math.radians(float(settings.get("rotation", 0.0)))
    flip, brightness = bool(settings.get("flip", False)), float(settings.get("brightness", 0.0))

    def apply(x, rnd):
        b = tf.shape(x)[0]
        s = tf.stack([tf.cast(rnd, tf.int64), tf.constant(seed, tf.int64)])
        if clip:  # fold T into channels: one transform per clip
            t, _, _, c = input_shape
            x = tf.reshape(tf.transpose(x, (0, 2, 3, 1, 4)), (b, h, w, t * c))
        if flip:
            do = tf.random.stateless_uniform((b,), seed=s + [0, 1]) < 0.5
            x = tf.where(do[:, None, None, None], tf.reverse(x, axis=[2]), x)
        if max_angle > 0:
            angle = tf.random.stateless_uniform((b,), seed=s + [0, 2], minval=-max_angle, maxval=max_angle)
            cos, sin, zero = tf.cos(angle), tf.sin(angle), tf.zeros_like(angle)
            cx, cy = (w - 1) / 2, (h - 1) / 2
            transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy,
                                  zero, zero], axis=1)
            x = keras.ops.image.affine_transform(x, transform, interpolation="bilinear", fill_mode="reflect",
                                                 data_format="channels_last")
        if brightness > 0:
            delta = tf.random.stateless_uniform((b,), seed=s + [0, 3], minval=-brightness, maxval=brightness)
            x = tf.clip_by_value(x + 255.0 * delta[:, None, None, None], 0.0, 255.0)
        if clip:
            x = tf.transpose(tf.reshape(x, (b, h, w, t, c)), (0, 3, 1, 2, 4))
        return x

    return apply


def pipeline_rate(cache, build, df, input_shape, *, batch_size, epochs, repeats, augment=None) -> float:
    """Clips/s of a make_dataset-shaped tf.data pipeline whose inputs come from the cache.

    ``augment``: ``None`` (no augmentation), ``"element"`` (the pipeline's own
    per-clip augmentation, as ``make_dataset`` applies it) or ``"batched"``
    (:func:`batched_augment`).
    """
    import tensorflow as tf

    from kerasmer.data import pipeline

    rows = [row for _, row in df.iterrows()]
    shape = tuple(input_shape)
    # PreprocessCache.dataset reads the .npy files with TensorFlow ops (no GIL); indices
    # stand in for the labels make_dataset zips in.
    ds = tf.data.Dataset.zip((cache.dataset(df, build, shape), tf.data.Dataset.range(len(rows))))
    ds = ds.shuffle(len(rows), seed=0, reshuffle_each_iteration=True).repeat(epochs)
    rnd = tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True)
    if augment == "element":
        apply = pipeline._augment_fn(pipeline.DEFAULT_AUGMENT, shape, 0)
        ds = tf.data.Dataset.zip((ds, rnd)).map(lambda xy, r: (apply(xy[0], r), xy[1]),
                                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size)
    if augment == "batched":
        apply = batched_augment(pipeline.DEFAULT_AUGMENT, shape, 0)
        ds = tf.data.Dataset.zip((ds, rnd)).map(lambda xy, r: (apply(xy[0], r), xy[1]),
                                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda x, i: ((x - 127.0) / 64.0, i), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)

    def run():
        for _ in ds:
            pass

    run()  # warm-up: first-iteration tracing and autotuning
    return len(rows) * epochs / _median_time(run, repeats)


def train_rate(name, input_shape, *, batch_size, steps, repeats) -> float:
    """Clips/s of model.train_on_batch for a registered model (median step time after warm-up)."""
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
    step = _median_time(lambda: [model.train_on_batch(x, y) for _ in range(steps)], repeats) / steps
    return batch_size / step


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip-model", default="shallow_conv3d_mhsa", help="registered clip model (default %(default)s)")
    p.add_argument("--subjects", type=int, default=4)
    p.add_argument("--clips-per-class", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=4, help="pipeline epochs per timing")
    p.add_argument("--steps", type=int, default=5, help="training steps per timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", default=None, help="folder for the synthetic set and the cache (default: a temp dir)")
    p.add_argument("--write", default=None, help="write the Markdown results to this file")
    args = p.parse_args(argv)

    import tensorflow as tf

    import kerasmer
    from kerasmer.data import INPUT_BUILDERS, PreprocessCache, make_flow_builder, make_synthetic, read_dataset
    from kerasmer.models.registry import model_info

    work = Path(args.work or tempfile.mkdtemp(prefix="kerasmer_bench_"))
    root = make_synthetic(work / "synthetic", subjects=args.subjects, clips_per_class=args.clips_per_class, seed=0)
    df = read_dataset("casme2", root)
    print(f"{len(df)} synthetic clips (CASME II layout, 128x128, 200 fps); work folder {work}")

    clip_info = model_info(args.clip_model)
    flow = make_flow_builder()
    cases = [  # (label, model, modality, builder, input shape)
        ("learnet", "learnet", "dynamic_image", INPUT_BUILDERS["dynamic_image"], model_info("learnet").input_shape),
        (args.clip_model, args.clip_model, "clip", INPUT_BUILDERS["clip"], clip_info.input_shape),
        ("learnet on flow", "learnet", "flow", flow, model_info("learnet").input_shape),
    ]
    results, model_rates = [], {}
    for label, model, modality, build, shape in cases:
        config = {"modality": modality, "input_shape": list(shape), **(getattr(build, "config", None) or {})}
        cache = PreprocessCache(work / "cache", config=config, annotation=df)
        t = time.perf_counter()  # the preprocessing itself, without the cache (it may be filled already)
        for _, row in df.iterrows():
            build(row, shape)
        cold = len(df) / (time.perf_counter() - t)
        cache.warm(df, build, shape)
        kw = dict(batch_size=args.batch_size, epochs=args.epochs, repeats=args.repeats)
        rates = [pipeline_rate(cache, build, df, shape, augment=a, **kw) for a in (None, "element", "batched")]
        if model not in model_rates:
            model_rates[model] = train_rate(model, shape, batch_size=args.batch_size, steps=args.steps,
                                            repeats=args.repeats)
        train = model_rates[model]
        results.append((label, modality, shape, cold, *rates, train))
        print(f"{label:20s} {modality:13s} {str(shape):16s} preprocess {cold:6.1f} | pipeline from cache "
              f"{rates[0]:7.1f} plain, {rates[1]:7.1f} augmented per clip, {rates[2]:7.1f} augmented per batch "
              f"| train {train:7.1f} clips/s")

    cpus = os.cpu_count()
    lines = [
        "## Input pipeline vs. training step",
        "",
        f"Measured with `python benchmarks/bench_pipeline.py` (kerasmer {kerasmer.__version__}, TensorFlow "
        f"{tf.__version__}, Python {platform.python_version()}, {platform.machine()}, {cpus} CPU core(s) visible).",
        f"{len(df)} synthetic clips, batch size {args.batch_size}; medians of {args.repeats} timings.",
        "Pipeline: read the `.npy` files from the cache (`PreprocessCache.dataset`), shuffle, [augment], "
        "normalize, batch, prefetch.  *Augmented per clip*: `make_dataset`'s flip/rotation/brightness "
        "(`pipeline._augment_fn`), one `affine_transform` per clip.  *Augmented per batch*: the same "
        "transforms drawn per clip but applied to the whole batch in one op (`batched_augment` in the script).",
        "Training: `model.train_on_batch` (Adam), clips/s = batch size / median step time.",
        "",
        "| model | modality | input | preprocessing, once | pipeline, no augmentation | augmented per clip "
        "| augmented per batch | training step | ratio: none / per clip / per batch |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, modality, shape, cold, plain, elem, batched, train in results:
        lines.append(f"| {label} | {modality} | {'x'.join(map(str, shape))} | {cold:.1f} | {plain:.1f} | "
                     f"{elem:.1f} | {batched:.1f} | {train:.1f} | {plain / train:.1f}x / {elem / train:.1f}x / "
                     f"{batched / train:.1f}x |")
    verdict = {name: all(r[col] >= 3 * r[-1] for r in results)
               for name, col in (("no augmentation", 4), ("augmented per clip", 5), ("augmented per batch", 6))}
    ok = all(verdict.values())
    lines += ["", "Rates in clips per second.  Requirement (pipeline >= 3x the training rate), every row: "
              + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in verdict.items()) + "."]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)
        print(f"written to {args.write}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
