"""What right bfloat16 bias gradients cost: kerasmer's broadcasting bias add against Keras' ``BiasAdd``.

TF 2.21's CPU ``BiasAddGrad`` sums bfloat16 in bfloat16 and saturates, so kerasmer's Conv2D, Conv3D and Dense add
their bias in bfloat16 as ``add(bias, outputs)``, whose gradient is a float32-accumulated ``reduce_sum``
(:mod:`kerasmer.layers.biased`).  Graphs traced under :func:`kerasmer.layers.inference_graph` keep Keras'
``BiasAdd``; the serving functions use it.  Under ``mixed_bfloat16`` this script times, interleaved:

* **training** (forward, backward, SGD update in one ``tf.function``) of each model in ``--train-models``:
  ``keras BiasAdd`` (the step traced under ``inference_graph()``: Keras' graph, wrong bias gradients) against
  ``kerasmer add`` (the default);
* **inference** of each model in ``--infer-models`` at batch 1: ``keras BiasAdd`` (``inference_graph()``, what
  the serving functions trace) against ``kerasmer add`` (a plain call, as ``model.predict`` runs).

Everything goes through ``benchmarks/_harness.py``: a quiet machine before each block, the configurations
interleaved, medians and ratios, the load beside each row.

Usage:
    python benchmarks/bench_bias.py --json bench_bias.json
    python benchmarks/bench_bias.py --quick --no-wait     # seconds: checks that the script works

Example:
    >>> # python benchmarks/bench_bias.py --train-models learnet --infer-models   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _harness import Harness, add_arguments  # noqa: E402  (first: it puts the checkout on sys.path)
import kerasmer  # noqa: E402
from kerasmer.layers import inference_graph  # noqa: E402
from kerasmer.training.recipes import get_recipe  # noqa: E402

# (input shape, batch) per model: the registry's input at the recipe's batch, cut where a step would take
# seconds on two cores (attention56's 224x224 to 64x64, as in the leaderboard).
TRAIN = {"learnet": None, "shallow_conv2d_mhsa": None, "micro_attention_resnet": ((112, 112, 3), None),
         "attention56": ((64, 64, 3), 8)}
QUICK_SHAPE = {"learnet": (32, 32, 3), "larnet": (32, 32, 3)}


def _setting(name: str, args):
    """The input shape and batch ``name`` is timed at."""
    info = kerasmer.model_info(name)
    if args.quick:
        return QUICK_SHAPE.get(name, info.test_input_shape or info.input_shape), 2
    shape, batch = TRAIN.get(name) or (None, None)
    return tuple(shape or info.input_shape), int(batch or get_recipe(info.recipe).batch_size)


def _data(shape, batch, classes):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, *shape)).astype("float32"))
    return x, tf.one_hot(np.arange(batch) % classes, classes)


def _train_step(model, x, y, keras_bias_add: bool):
    """One compiled SGD step of ``model``; traced under ``inference_graph()`` when ``keras_bias_add``."""
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)

    @tf.function
    def step():
        with inference_graph() if keras_bias_add else contextlib.nullcontext():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(keras.losses.categorical_crossentropy(y, model(x, training=True)))
            grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return lambda: float(step())


def _infer(model, x, keras_bias_add: bool):
    @tf.function
    def call():
        with inference_graph() if keras_bias_add else contextlib.nullcontext():
            return model(x, training=False)

    return lambda: np.asarray(call())


def _build(name, shape, classes):
    keras.utils.set_random_seed(0)
    return kerasmer.build_model(name, num_classes=classes, input_shape=shape, precision="mixed_bfloat16")


def measure(harness, name, args, kind: str):
    """One interleaved block for ``name``: Keras' BiasAdd against kerasmer's add, training or inference."""
    shape, batch = _setting(name, args)
    if kind == "inference":
        batch = 1
    x, y = _data(shape, batch, args.num_classes)
    fns = {}
    for label, keras_order in (("keras BiasAdd", True), ("kerasmer add", False)):
        model = _build(name, shape, args.num_classes)
        fns[label] = _train_step(model, x, y, keras_order) if kind == "training" else _infer(model, x, keras_order)
    block = harness.block(f"{name} {kind}, batch {batch}", fns, unit="clips/s", timed=True, work=batch,
                          warmup=args.warmup, rounds=args.steps if kind == "training" else args.calls,
                          info={"input_shape": list(shape), "batch": batch, "policy": "mixed_bfloat16"})
    keras.backend.clear_session()
    return block


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-models", nargs="*", default=list(TRAIN))
    parser.add_argument("--infer-models", nargs="*", default=["larnet", "learnet"])
    parser.add_argument("--steps", type=int, default=15, help="timed interleaved training steps per configuration")
    parser.add_argument("--calls", type=int, default=30, help="timed interleaved inference calls per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per configuration (tracing, caches)")
    parser.add_argument("--num-classes", type=int, default=3)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_models, args.infer_models = ["learnet"], ["learnet"]
        args.steps, args.calls, args.warmup = 2, 2, 1
    harness = Harness(args, "bench_bias")
    for name in args.train_models:
        measure(harness, name, args, "training")
    for name in args.infer_models:
        measure(harness, name, args, "inference")
    harness.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
