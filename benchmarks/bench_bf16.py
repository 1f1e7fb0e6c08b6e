"""Training throughput in float32 and bfloat16, with and without the Conv3D guard.

Measures train steps (forward, backward, SGD update; one ``tf.function``) of
``resnet3d18`` and ``meranet18`` at their real 16×112×112×3 clip size, in three
modes:

* ``float32``;
* ``bf16+guard``: ``mixed_bfloat16`` with kerasmer's guard (Conv3Ds whose input
  depth is smaller than the kernel depth compute in float32);
* ``bf16-noguard``: ``mixed_bfloat16`` with ``KERASMER_DISABLE_BF16_GUARD=1``
  (fast but wrong: those layers' weight gradients are garbage with oneDNN 3.7).

It also reports the share of conv FLOPs the guard moves to float32, and whether
the loss stayed finite.  Results are printed as a Markdown table and written as
JSON with the machine description (``precision_environment``).

Usage:
    python benchmarks/bench_bf16.py --batch 4 --steps 5 --out bench_bf16.json

Example:
    >>> # python benchmarks/bench_bf16.py --models resnet3d18 --steps 3   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kerasmer  # noqa: E402
from kerasmer.core.precision import DISABLE_ENV, precision_environment  # noqa: E402

MODES = {  # name: (policy, guard disabled)
    "float32": ("float32", False),
    "bf16+guard": ("mixed_bfloat16", False),
    "bf16-noguard": ("mixed_bfloat16", True),
}


def build(name: str, policy: str, disable_guard: bool, num_classes: int):
    """Build ``name`` under ``policy``, recording every Conv3D's input shape.

    Returns:
        ``(model, convs)``, ``convs`` a list of ``(layer, input_shape)``.
    """
    seen = []
    original_build = keras.layers.Conv3D.build

    def recording_build(self, input_shape):
        seen.append((self, tuple(input_shape)))
        return original_build(self, input_shape)

    keras.layers.Conv3D.build = recording_build
    old_env = os.environ.pop(DISABLE_ENV, None)
    if disable_guard:
        os.environ[DISABLE_ENV] = "1"
    try:
        keras.utils.set_random_seed(0)
        model = kerasmer.build_model(name, num_classes=num_classes, precision=policy)
    finally:
        keras.layers.Conv3D.build = original_build
        os.environ.pop(DISABLE_ENV, None)
        if old_env is not None:
            os.environ[DISABLE_ENV] = old_env
    return model, seen


def conv_flops(layer, input_shape) -> float:
    """Forward multiply-adds ×2 of one Conv3D call, per sample."""
    out = layer.compute_output_shape(input_shape)
    kernel_volume = int(np.prod(layer.kernel_size))
    cin = int(input_shape[-1]) // layer.groups
    return 2.0 * float(np.prod(out[1:])) * kernel_volume * cin


def make_step(model, batch: int, seed: int = 0):
    """A compiled train step (forward, backward, SGD update) on a fixed random batch."""
    rng = np.random.default_rng(seed)
    shape = (batch,) + tuple(model.input_shape[1:])
    x = tf.constant(rng.standard_normal(shape).astype("float32"))
    y = tf.one_hot(np.arange(batch) % model.output_shape[-1], model.output_shape[-1])
    optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    loss_fn = keras.losses.CategoricalCrossentropy()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def timed(step):
    t0 = time.perf_counter()
    loss = float(step())
    return time.perf_counter() - t0, loss


def guarded_layer_cost(convs, batch: int, reps: int):
    """Time each guarded Conv3D alone (forward + both gradients) in float32 and bf16.

    End-to-end step times on a loaded machine vary by more than the guard's
    cost, so this isolates it: the sum over the guarded layers of
    (float32 time - bf16 time) is what the guard adds to one train step.

    Args:
        convs: ``(layer, input_shape)`` of the guarded layers.
        batch: batch size.
        reps: timed repetitions per layer and dtype (median taken).

    Returns:
        A list of dicts: layer, input_shape, kernel, float32_ms, bf16_ms.
    """
    rng = np.random.default_rng(0)
    rows = []
    for layer, input_shape in convs:
        shape = (batch,) + tuple(input_shape[1:])
        x = tf.constant(rng.standard_normal(shape).astype("float32"))
        kernel = tf.constant(rng.standard_normal(tuple(layer.kernel.shape)).astype("float32") * 0.01)
        strides = [1, *layer.strides, 1]
        padding = layer.padding.upper()
        medians = {}
        for dtype in (tf.float32, tf.bfloat16):
            @tf.function
            def fwd_bwd(dtype=dtype):
                with tf.GradientTape() as tape:
                    # The layer receives bf16 from its bf16 neighbours either way.
                    xi, ki = tf.cast(tf.cast(x, tf.bfloat16), dtype), tf.cast(kernel, dtype)
                    tape.watch([xi, ki])
                    y = tf.nn.conv3d(xi, ki, strides, padding)
                    loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
                return tape.gradient(loss, [xi, ki])

            for _ in range(2):
                fwd_bwd()
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                [g.numpy() for g in fwd_bwd()]
                times.append(time.perf_counter() - t0)
            medians[dtype.name] = statistics.median(times) * 1e3
        rows.append(dict(layer=layer.name, input_shape=list(shape), kernel=list(layer.kernel.shape),
                         float32_ms=medians["float32"], bf16_ms=medians["bfloat16"]))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet3d18", "meranet18"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing, oneDNN primitive caches)")
    parser.add_argument("--num-classes", type=int, default=3)
    parser.add_argument("--layer-reps", type=int, default=7,
                        help="repetitions per guarded layer in the isolated cost measurement (0: skip)")
    parser.add_argument("--out", default=None, help="write results as JSON here")
    args = parser.parse_args(argv)

    env = precision_environment()
    env.pop("precision"), env.pop("compute_dtype"), env.pop("variable_dtype")
    env.update(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
               load_average=os.getloadavg(), batch=args.batch, steps=args.steps, warmup=args.warmup)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            env["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    results, guard_cost = [], {}
    for name in args.models:
        runs = []
        for mode in args.modes:
            policy, disable = MODES[mode]
            model, convs = build(name, policy, disable, args.num_classes)
            total = sum(conv_flops(layer, s) for layer, s in convs)
            f32 = [(layer, s) for layer, s in convs if policy != "float32" and layer.compute_dtype == "float32"]
            share = sum(conv_flops(layer, s) for layer, s in f32) / total if total else 0.0
            if mode == "bf16+guard" and args.layer_reps:
                layer_rows = guarded_layer_cost(f32, args.batch, args.layer_reps)
                extra = sum(r["float32_ms"] - r["bf16_ms"] for r in layer_rows)
                for r in layer_rows:
                    print(f"{name:12s} guarded {r['layer']:24s} input {r['input_shape']} kernel {r['kernel'][:3]}: "
                          f"float32 {r['float32_ms']:.1f} ms, bf16 {r['bf16_ms']:.1f} ms (fwd+bwd)", flush=True)
                print(f"{name:12s} the guard adds {extra:.0f} ms per train step at batch {args.batch}", flush=True)
                guard_cost[name] = dict(layers=layer_rows, added_ms_per_step=extra)
            runs.append(dict(model=name, mode=mode, step=make_step(model, args.batch), keep=model,
                             step_times_s=[], losses=[], float32_conv3d_layers=[layer.name for layer, _ in f32],
                             float32_conv_flop_share=share, conv_gflops_per_clip=total / 1e9))
        # Modes are interleaved step by step, so a change in the machine's load
        # (it is shared) hits all modes alike; medians drop the outliers.
        for i in range(args.warmup + args.steps):
            for run in runs:
                dt, loss = timed(run["step"])
                run["losses"].append(loss)
                if i >= args.warmup:
                    run["step_times_s"].append(dt)
        for run in runs:
            run.pop("step"), run.pop("keep")
            run["median_step_s"] = statistics.median(run["step_times_s"])
            run["clips_per_s"] = args.batch / run["median_step_s"]
            run["loss_finite"] = bool(np.all(np.isfinite(run["losses"])))
            print(f"{name:12s} {run['mode']:13s} {run['median_step_s']:7.2f} s/step  {run['clips_per_s']:6.2f} clips/s  "
                  f"float32 convs {len(run['float32_conv3d_layers'])} ({run['float32_conv_flop_share']:.1%} of "
                  f"conv FLOPs)  losses {np.round(run['losses'], 4).tolist()}", flush=True)
        results.extend(runs)
        keras.backend.clear_session()
    env["load_average_after"] = os.getloadavg()

    print("\n| model | mode | median s/step | clips/s | vs float32 | float32 Conv3Ds (FLOP share) | loss finite |")
    print("|---|---|---|---|---|---|---|")
    base = {r["model"]: r["median_step_s"] for r in results if r["mode"] == "float32"}
    for r in results:
        speed = f"{base[r['model']] / r['median_step_s']:.2f}×" if r["model"] in base else "n/a"
        print(f"| {r['model']} | {r['mode']} | {r['median_step_s']:.2f} | {r['clips_per_s']:.2f} | {speed} | "
              f"{len(r['float32_conv3d_layers'])} ({r['float32_conv_flop_share']:.1%}) | {r['loss_finite']} |")
    for name, cost in guard_cost.items():
        bf16 = next((r["median_step_s"] for r in results if r["model"] == name and r["mode"] == "bf16-noguard"), None)
        share = f" = {cost['added_ms_per_step'] / 1e3 / bf16:.1%} of the unguarded bf16 step" if bf16 else ""
        print(f"guard cost, {name}: {cost['added_ms_per_step']:.0f} ms per step (guarded layers alone){share}")
    print("\nmachine:", json.dumps(env))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"environment": env, "results": results, "guard_cost": guard_cost}, f, indent=2)


if __name__ == "__main__":
    main()
