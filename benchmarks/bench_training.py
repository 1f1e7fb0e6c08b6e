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

mixed_float16 is measured only when TensorFlow sees a GPU.  This is a
benchmark, not a test: numbers depend on the machine and on its load.

Usage::

    python benchmarks/bench_training.py                       # every model, registry input shapes
    python benchmarks/bench_training.py --models learnet --batch 16 --steps 10
    python benchmarks/bench_training.py --small --json out.json   # test-size inputs, quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kerasmer  # noqa: E402
from kerasmer.core.precision import precision_scope  # noqa: E402


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


def train_throughput(name: str, input_shape, policy: str, batch: int, steps: int, warmup: int = 2) -> float:
    """Training samples/s of ``name`` under dtype ``policy``."""
    with precision_scope(policy):
        keras.utils.set_random_seed(0)
        model = kerasmer.build_model(name, num_classes=3, input_shape=tuple(input_shape))
        model.compile(keras.optimizers.SGD(1e-3, momentum=0.9), "categorical_crossentropy")
        x = np.random.default_rng(0).normal(size=(batch, *input_shape)).astype("float32")
        y = keras.utils.to_categorical(np.arange(batch) % 3, 3)
        ds = tf.data.Dataset.from_tensors((x, y)).repeat()
        model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)
        t0 = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        return batch * steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="*", help="shell pattern or comma-separated names (default: all)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--small", action="store_true", help="use each model's small test input shape")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)

    names = (args.models.split(",") if "," in args.models or args.models in kerasmer.list_models()
             else kerasmer.list_models(args.models))
    gpu = bool(tf.config.list_physical_devices("GPU"))
    policies = ["float32", "mixed_bfloat16"] + (["mixed_float16"] if gpu else [])
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} logical CPUs, GPU: {gpu}, load average {os.getloadavg()[0]:.1f}")
    peaks = {"float32": matmul_peak("float32"), "mixed_bfloat16": matmul_peak("bfloat16")}
    if gpu:
        peaks["mixed_float16"] = matmul_peak("float16")
    for k, v in peaks.items():
        print(f"matmul peak at the start of this run, {k}: {v / 1e9:.1f} GFLOP/s", flush=True)
    rows = []
    dtypes = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
    for name in names:
        info = kerasmer.model_info(name)
        shape = tuple(info.test_input_shape or info.input_shape) if args.small else info.input_shape
        flops = forward_flops(kerasmer.build_model(name, num_classes=3, input_shape=shape), shape)
        for policy in policies:
            peak = matmul_peak(dtypes[policy])  # same load as the timing that follows
            try:
                sps = train_throughput(name, shape, policy, args.batch, args.steps)
            except Exception as err:
                print(f"{name} {policy}: failed: {type(err).__name__}: {err}")
                continue
            frac = 3 * flops * sps / peak if flops else None
            rows.append({"model": name, "input_shape": list(shape), "precision": policy, "batch": args.batch,
                         "samples_per_s": round(sps, 2), "forward_gflops": flops / 1e9 if flops else None,
                         "matmul_peak_gflops": round(peak / 1e9, 1),
                         "peak_fraction": round(frac, 4) if frac is not None else None,
                         "load_average": round(os.getloadavg()[0], 1)})
            r = rows[-1]
            gf = f"{r['forward_gflops']:.3f}" if flops else "-"
            print(f"{name:24s} {str(shape):18s} {policy:15s} {sps:9.2f} samples/s  fwd {gf:>8s} GFLOP  "
                  f"peak {r['matmul_peak_gflops']:6.1f} GFLOP/s  fraction {r['peak_fraction']}  "
                  f"load {r['load_average']}", flush=True)
            if args.json:  # after every row, so an interrupted run keeps what it measured
                with open(args.json, "w", encoding="utf-8") as f:
                    json.dump({"peaks_gflops_at_start": {k: v / 1e9 for k, v in peaks.items()}, "gpu": gpu,
                               "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
