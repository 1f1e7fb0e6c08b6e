"""Training throughput in float32 and bfloat16, with and without the Conv3D guard.

Measures train steps (forward, backward, SGD update; one ``tf.function``) of
``resnet3d18`` and ``meranet18`` at their real 16×112×112×3 clip size, in three
modes:

* ``float32``;
* ``bf16+guard``: ``mixed_bfloat16`` with kerasmer's guard (Conv3Ds whose input
  depth is smaller than the kernel depth are ``GuardedConv3D``: their weight
  gradient is taken on the explicitly padded input; until issue 16 they computed
  in float32);
* ``bf16-noguard``: ``mixed_bfloat16`` with ``KERASMER_DISABLE_BF16_GUARD=1``
  (fast but wrong: those layers' weight gradients are garbage with oneDNN 3.7).

It also reports the share of conv FLOPs in guarded layers, the guard's cost
measured on the guarded layers alone (the guarded layer, float32 as before issue
16, and unguarded bf16, interleaved),
and whether the loss stayed finite.  Everything goes through
``benchmarks/_harness.py``: a wait for a quiet machine before each block, the
modes interleaved step by step, medians and ratios, the machine and the load
beside each row (``--json`` writes it all).

Usage:
    python benchmarks/bench_bf16.py --batch 4 --steps 5 --json bench_bf16.json
    python benchmarks/bench_bf16.py --quick --no-wait     # seconds: checks that the script works

Example:
    >>> # python benchmarks/bench_bf16.py --models resnet3d18 --steps 3   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _harness import Harness, add_arguments  # noqa: E402  (first: it puts the checkout on sys.path)
import kerasmer  # noqa: E402
from kerasmer.core.precision import DISABLE_ENV  # noqa: E402
from kerasmer.layers import GuardedConv3D  # noqa: E402

MODES = {  # name: (policy, guard disabled)
    "float32": ("float32", False),
    "bf16+guard": ("mixed_bfloat16", False),
    "bf16-noguard": ("mixed_bfloat16", True),
}
# The modes that must train: a non-finite loss there fails the run.  ``bf16-noguard`` is
# excluded on purpose: it is the oneDNN bug the guard exists for, and a NaN there is a
# finding to report, not a failure of the benchmark (CI saw one at 4x16x16 clips).
MUST_STAY_FINITE = ("float32", "bf16+guard")


def build(name: str, policy: str, disable_guard: bool, num_classes: int, input_shape):
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
        model = kerasmer.build_model(name, num_classes=num_classes, input_shape=tuple(input_shape),
                                     precision=policy)
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


def _conv_fwd_bwd(x, kernel, layer, dtype, guarded=False):
    """A tf.function: one guarded layer's conv, forward and both gradients, in ``dtype``.

    With ``guarded`` the conv is the layer's own (``GuardedConv3D.convolution_op``), else TensorFlow's.
    """
    strides, padding = [1, *layer.strides, 1], layer.padding.upper()

    @tf.function
    def fwd_bwd():
        with tf.GradientTape() as tape:
            # The layer receives bf16 from its bf16 neighbours either way.
            xi, ki = tf.cast(tf.cast(x, tf.bfloat16), dtype), tf.cast(kernel, dtype)
            tape.watch([xi, ki])
            y = layer.convolution_op(xi, ki) if guarded else tf.nn.conv3d(xi, ki, strides, padding)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        return tape.gradient(loss, [xi, ki])

    return lambda: [g.numpy() for g in fwd_bwd()]


def guarded_layer_cost(harness, model_name, convs, batch: int, reps: int):
    """Time each guarded Conv3D alone (forward + both gradients): guarded, float32 and bf16 interleaved.

    End-to-end step times vary by more than the guard's cost, so this isolates it: the sum over
    the guarded layers of (guarded time - bf16 time) is what the guard adds to one train step, and
    (float32 time - guarded time) what ``GuardedConv3D`` saves against the float32 guard before issue 16.

    Args:
        harness: the run's :class:`_harness.Harness` (one block per layer).
        model_name: for the block names.
        convs: ``(layer, input_shape)`` of the guarded layers.
        batch: batch size.
        reps: interleaved rounds per layer (median taken).

    Returns:
        A list of dicts: layer, input_shape, kernel, guarded_ms, float32_ms, bf16_ms.
    """
    rng = np.random.default_rng(0)
    rows = []
    for layer, input_shape in convs:
        shape = (batch,) + tuple(input_shape[1:])
        x = tf.constant(rng.standard_normal(shape).astype("float32"))
        kernel = tf.constant(rng.standard_normal(tuple(layer.kernel.shape)).astype("float32") * 0.01)
        fns = {name: _conv_fwd_bwd(x, kernel, layer, dtype, guarded=name == "guarded")
               for name, dtype in (("guarded", tf.bfloat16), ("float32", tf.float32), ("bf16", tf.bfloat16))}
        block = harness.block(f"{model_name} guarded {layer.name}", fns, unit="s", timed=True, warmup=2,
                              rounds=reps, higher_is_better=False,
                              info={"input_shape": list(shape), "kernel": list(layer.kernel.shape)})
        rows.append(dict(layer=layer.name, input_shape=list(shape), kernel=list(layer.kernel.shape),
                         guarded_ms=block["configs"]["guarded"]["median"] * 1e3,
                         float32_ms=block["configs"]["float32"]["median"] * 1e3,
                         bf16_ms=block["configs"]["bf16"]["median"] * 1e3))
    return rows


def _model_runs(harness, name, args, input_shape):
    """Build ``name`` in every mode; one record per mode with its step, its guarded convs, its FLOP share."""
    runs, guard_rows = {}, None
    for mode in args.modes:
        policy, disable = MODES[mode]
        model, convs = build(name, policy, disable, args.num_classes, input_shape)
        total = sum(conv_flops(layer, s) for layer, s in convs)
        guarded = [(layer, s) for layer, s in convs if isinstance(layer, GuardedConv3D)
                   or (policy != "float32" and layer.compute_dtype == "float32")]
        share = sum(conv_flops(layer, s) for layer, s in guarded) / total if total else 0.0
        if mode == "bf16+guard" and args.layer_reps and guarded:
            measured = guarded[:args.guarded_layers] if args.guarded_layers else guarded
            guard_rows = guarded_layer_cost(harness, name, measured, args.batch, args.layer_reps)
        runs[mode] = dict(model=name, mode=mode, step=make_step(model, args.batch), keep=model, losses=[],
                          guarded_conv3d_layers=[layer.name for layer, _ in guarded],
                          guarded_conv_flop_share=share, conv_gflops_per_clip=total / 1e9)
    return runs, guard_rows


def _stepper(run):
    def call():
        run["losses"].append(float(run["step"]()))
    return call


def measure_model(harness, name, args, input_shape):
    """The modes of ``name`` interleaved step by step in one harness block; rows for the summary."""
    runs, guard_rows = _model_runs(harness, name, args, input_shape)
    block = harness.block(f"{name} train step", {mode: _stepper(run) for mode, run in runs.items()},
                          unit="clips/s", timed=True, work=args.batch, warmup=args.warmup, rounds=args.steps,
                          info={"input_shape": list(input_shape), "batch": args.batch})
    rows = []
    for mode, run in runs.items():
        run.pop("step"), run.pop("keep")
        run["clips_per_s"] = block["configs"][mode]["median"]
        run["vs_first_mode"] = block["configs"][mode]["ratio"]
        run["loss_finite"] = bool(np.all(np.isfinite(run["losses"])))
        rows.append(run)
    if guard_rows is not None:
        extra = sum(r["guarded_ms"] - r["bf16_ms"] for r in guard_rows)
        saved = sum(r["float32_ms"] - r["guarded_ms"] for r in guard_rows)
        harness.note(f"{name} guard", {"layers": guard_rows, "added_ms_per_step": extra,
                                       "saved_against_float32_ms_per_step": saved})
        unguarded = runs.get("bf16-noguard")
        share = (f" = {extra / 1e3 * unguarded['clips_per_s'] / args.batch:.1%} of the unguarded bf16 step"
                 if unguarded else "")
        print(f"guard cost, {name}: {extra:.0f} ms per step at batch {args.batch} (guarded layers alone){share}; "
              f"{saved:.0f} ms less than the guarded layers in float32")
    keras.backend.clear_session()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet3d18", "meranet18"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--input-shape", default=None, help="T,H,W,C of the clips (default: the registry's)")
    parser.add_argument("--steps", type=int, default=5, help="timed interleaved steps per mode (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing, oneDNN primitive caches)")
    parser.add_argument("--num-classes", type=int, default=3)
    parser.add_argument("--layer-reps", type=int, default=7,
                        help="rounds per guarded layer in the isolated cost measurement (0: skip)")
    parser.add_argument("--guarded-layers", type=int, default=0,
                        help="measure only the first N guarded layers alone (default: all)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:  # seconds: a tiny clip where the guard still sends one conv to float32
        args.models, args.batch, args.steps, args.warmup, args.layer_reps = ["resnet3d18"], 2, 2, 1, 2
        args.guarded_layers = 1
        args.input_shape = args.input_shape or "4,16,16,3"
    harness = Harness(args, "bench_bf16")
    results = []
    for name in args.models:
        shape = (tuple(int(v) for v in args.input_shape.split(",")) if args.input_shape
                 else kerasmer.model_info(name).input_shape)
        results.extend(measure_model(harness, name, args, shape))

    print("\n| model | mode | clips/s (median) | vs first mode | guarded Conv3Ds (FLOP share) | loss finite |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['mode']} | {r['clips_per_s']:.2f} | {r['vs_first_mode']:.2f}× | "
              f"{len(r['guarded_conv3d_layers'])} ({r['guarded_conv_flop_share']:.1%}) | {r['loss_finite']} |")
    harness.note("results", results)
    harness.report()
    return exit_code(results)


def exit_code(results):
    """0 unless a mode in ``MUST_STAY_FINITE`` produced a non-finite loss; prints what diverged.

    Args:
        results: the rows of ``measure_model`` (``model``, ``mode``, ``loss_finite``).

    Returns:
        1 when float32 or the guarded bf16 step diverged, else 0.
    """
    for r in results:
        if not r["loss_finite"]:
            blame = "FAILED" if r["mode"] in MUST_STAY_FINITE else "expected without the guard"
            print(f"{r['model']} {r['mode']}: the loss became non-finite ({blame})")
    return int(any(not r["loss_finite"] for r in results if r["mode"] in MUST_STAY_FINITE))


if __name__ == "__main__":
    raise SystemExit(main())
