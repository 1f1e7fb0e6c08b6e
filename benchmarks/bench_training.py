"""Training throughput per model: float32 vs mixed_bfloat16 (CPU), mixed_float16 (GPU only).

For every model, in one process:

* training throughput in samples/s (``model.fit`` on in-memory random batches,
  after warm-up steps, so the input pipeline is not what is measured);
* the model's forward FLOPs per sample, counted by TensorFlow's graph profiler
  (a multiply-add counts as 2 FLOPs); a training step is taken as 3x forward
  (forward + two backward products), the usual approximation;
* the achieved fraction of a matmul peak *measured in the same run*: the FLOP/s
  of a large square ``tf.matmul`` in the same dtype (float32, or bfloat16 for
  mixed_bfloat16), i.e. ``3 * flops * samples_per_s / matmul_flops_per_s``.
  The peak is re-measured right before each model's timing, so both numbers
  see the same machine load (on a shared machine a peak measured once, at the
  start, can give fractions above 1).

mixed_float16 is measured only when TensorFlow sees a GPU.  Through
``benchmarks/_harness.py``: a wait for a quiet machine before each block, the
precisions of a model interleaved round by round, medians and ratios, the
machine and the load beside each row (``--json`` writes it all).  This is a
benchmark, not a test: numbers depend on the machine and on its load.

Usage::

    python benchmarks/bench_training.py                       # every model, registry input shapes
    python benchmarks/bench_training.py --models learnet --batch 16 --steps 10
    python benchmarks/bench_training.py --small --json out.json   # test-size inputs
    python benchmarks/bench_training.py --quick --no-wait         # seconds: checks that the script works
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _harness import Harness, add_arguments, print_table  # noqa: E402  (first: it puts the checkout on sys.path)
import kerasmer  # noqa: E402
from kerasmer.core.precision import precision_scope  # noqa: E402
from kerasmer.data import pipeline_options  # noqa: E402

DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def matmul_peak(dtype: str, n: int = 2048, reps: int = 8) -> float:
    """FLOP/s of an ``n x n`` matmul in ``dtype`` (best of 3 timings of ``reps`` products)."""
    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    f = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    f(a).numpy()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            f(a).numpy()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 * reps / best


def forward_flops(model: keras.Model, input_shape) -> int | None:
    """Forward FLOPs for one sample, from TensorFlow's graph profiler (None if it fails)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    try:
        fn = tf.function(lambda x: model(x, training=False))
        concrete = fn.get_concrete_function(tf.TensorSpec([1, *input_shape], tf.float32))
        frozen = convert_variables_to_constants_v2(concrete)
        with tf.Graph().as_default() as graph:
            tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
            opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
            opts["output"] = "none"
            prof = tf.compat.v1.profiler.profile(graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts)
        return int(prof.total_float_ops)
    except Exception as err:  # a profiler failure must not hide the throughput numbers
        print(f"  (FLOPs not counted: {type(err).__name__}: {err})")
        return None


def make_trainer(name: str, input_shape, policy: str, batch: int, steps: int, warmup: int = 2):
    """A callable that fits ``steps`` steps of ``name`` (built under ``policy``) and returns samples/s.

    The model is built and warmed up (tracing, oneDNN primitive caches) here, so the callable
    times steady steps only; the harness interleaves the callables of the policies compared.
    """
    with precision_scope(policy):
        keras.utils.set_random_seed(0)
        model = kerasmer.build_model(name, num_classes=3, input_shape=tuple(input_shape))
    model.compile(keras.optimizers.SGD(1e-3, momentum=0.9), "categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(batch, *input_shape)).astype("float32")
    y = keras.utils.to_categorical(np.arange(batch) % 3, 3)
    # kerasmer's dataset options (tf.data's autotuning model off), as make_dataset sets them: with the model on,
    # each fit call's wall time snapped up to 10 ms x (2^k - 1) (kerasmer.data.pipeline_options).
    ds = tf.data.Dataset.from_tensors((x, y)).repeat().with_options(pipeline_options())
    model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)

    def fit():
        t0 = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        return batch * steps / (time.perf_counter() - t0)

    return fit


def _peaks(harness, name, dtypes, n):
    """Matmul FLOP/s per dtype, interleaved, right before ``name``'s timing (same load)."""
    fns = {policy: (lambda d=dtype: matmul_peak(d, n=n)) for policy, dtype in dtypes.items()}
    block = harness.block(f"{name}: matmul peak", fns, unit="FLOP/s", rounds=1, info={"n": n})
    return {policy: c["median"] for policy, c in block["configs"].items()}


def measure_model(harness, name, shape, policies, args) -> list:
    """One model: forward FLOPs, the matmul peaks, then its policies interleaved in one block."""
    flops = forward_flops(kerasmer.build_model(name, num_classes=3, input_shape=shape), shape)
    dtypes = {p: DTYPES[p] for p in policies}
    peaks = _peaks(harness, name, dtypes, args.matmul_n)
    trainers = {}
    for policy in policies:
        try:
            trainers[policy] = make_trainer(name, shape, policy, args.batch, args.steps)
        except Exception as err:  # one model failing must not lose the others' numbers
            print(f"{name} {policy}: failed: {type(err).__name__}: {err}")
    if not trainers:
        return []
    block = harness.block(f"{name} training", trainers, unit="samples/s",
                          info={"input_shape": list(shape), "batch": args.batch, "steps_per_round": args.steps})
    rows = []
    for policy, c in block["configs"].items():
        sps, peak = c["median"], peaks[policy]
        frac = 3 * flops * sps / peak if flops else None
        rows.append({"model": name, "input_shape": list(shape), "precision": policy, "batch": args.batch,
                     "samples_per_s": round(sps, 3), "vs_float32": c["ratio"],
                     "forward_gflops": flops / 1e9 if flops else None,
                     "matmul_peak_gflops": round(peak / 1e9, 1),
                     "peak_fraction": round(frac, 4) if frac is not None else None,
                     "load_before": block["load_before"], "load_after": block["load_after"],
                     "quiet": block["wait"]["quiet"]})
    keras.backend.clear_session()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="*", help="shell pattern or comma-separated names (default: all)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5, help="training steps per round")
    p.add_argument("--small", action="store_true", help="use each model's small test input shape")
    p.add_argument("--matmul-n", type=int, default=2048, help="size of the square matmul of the peak")
    add_arguments(p, rounds=3)
    args = p.parse_args(argv)
    if args.quick:  # seconds: one small model, one step per round
        args.models, args.small, args.batch, args.steps, args.rounds, args.matmul_n = "learnet", True, 2, 1, 2, 256

    names = (args.models.split(",") if "," in args.models or args.models in kerasmer.list_models()
             else kerasmer.list_models(args.models))
    gpu = bool(tf.config.list_physical_devices("GPU"))
    policies = ["float32", "mixed_bfloat16"] + (["mixed_float16"] if gpu else [])
    harness = Harness(args, "bench_training")
    rows = []
    for name in names:
        info = kerasmer.model_info(name)
        shape = tuple(info.test_input_shape or info.input_shape) if args.small else tuple(info.input_shape)
        rows.extend(measure_model(harness, name, shape, policies, args))
        harness.note("rows", rows)
    print_table("| model | input | precision | samples/s | vs float32 | forward GFLOP | fraction of matmul peak | load |",
                [(r["model"], "×".join(map(str, r["input_shape"])), r["precision"], r["samples_per_s"],
                  f"{r['vs_float32']:.2f}", f"{r['forward_gflops']:.3f}" if r["forward_gflops"] else "-",
                  r["peak_fraction"], f"{r['load_before']} → {r['load_after']}") for r in rows])
    harness.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
