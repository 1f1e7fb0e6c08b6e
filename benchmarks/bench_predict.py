"""Benchmark: ``kerasmer predict`` throughput per stage, and SavedModel load + first call in a fresh process.

Issue 14, item 6.  What is measured:

1. *Throughput* of :func:`kerasmer.inference.run_video` (what ``kerasmer predict`` runs) on a 200 fps
   synthetic long video (:func:`kerasmer.data.synthetic.video.make_synthetic_video`), in video frames per
   second, end to end and split into its stages: decode, face (tracking and cropping), spotting (motion
   curve and peaks) and recognition (model inputs and the model).  The synthetic faces are drawings, which
   OpenCV's Haar cascade does not find, and they fill the frame: the video runs as ``--face none`` (the face
   stage is then a pass-through).  Each round runs the video once; the stage rows read that run's split.
   The face stage with a detector is measured apart: the Haar tracker (:class:`kerasmer.inference.FaceTracker`)
   on a real face photo drifting by a few pixels, ``--track-side`` pixels square, at 200 fps.
3. *SavedModel load + first call in a fresh process* per model: a child Python process that never imports
   kerasmer loads the export with ``tf.saved_model.load`` and calls ``serving_default`` once on zeros of
   its input signature; it reports the load and the first call separately (the TensorFlow import is
   reported too but is not part of the figure).  The LARNet paper reports 180 s to load its model; the
   issue's goal for ``larnet`` is under 10 s.
4. *Per-frame latency by precision and batch* (``--latency-model``, default ``larnet``; issue 16, item 3): the
   model's ``serving_precomputed`` signature, loaded in this process, called on batches of 1, 2 and 4, in
   float32 and in bf16 (``mixed_bfloat16`` with the weights stored in bf16,
   :func:`kerasmer.core.precision.bfloat16_serving_model`), each exported with its batch norms folded (the
   default, :func:`kerasmer.models.fold_batch_norms`) and not; milliseconds per frame, interleaved.

Usage::

    python benchmarks/bench_predict.py --quick --no-wait               # seconds: checks that it runs
    python benchmarks/bench_predict.py --seconds 20 --models learnet,larnet --json predict.json

The models are untrained (timings do not depend on the weights).  Not a test: numbers depend on the machine
and its load; the harness (``benchmarks/_harness.py``) waits for a quiet machine and interleaves rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Harness, add_arguments, print_table  # noqa: E402

# The child process: no kerasmer import, as a TF Serving-like client would load the model.
CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
t0 = time.perf_counter()
import tensorflow as tf
t1 = time.perf_counter()
path = sys.argv[1]
meta = json.load(open(os.path.join(path, "assets.extra", "kerasmer.json")))
loaded = tf.saved_model.load(path)
fn = loaded.signatures["serving_default"]
t2 = time.perf_counter()
shape = meta["input_shape"]
hw = shape[-3:-1]
args = {}
for name, spec in fn.structured_input_signature[1].items():
    dims = spec.shape.as_list()
    if spec.dtype == tf.uint8 and len(dims) == 5:       # raw frames (batch, T, H, W, 3)
        dims = [1, 16, hw[0], hw[1], 3]
    else:
        dims = [1 if d is None else d for d in dims]
    args[name] = tf.zeros(dims, spec.dtype)
out = fn(**args)
_ = {k: v.numpy() for k, v in out.items()}
t3 = time.perf_counter()
record = {"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2}
# Batch-1 latency after the first call: serving_default as sent, and the model alone (serving_precomputed).
calls = {"serving_default": (fn, args)}
if "serving_precomputed" in loaded.signatures:
    pre = loaded.signatures["serving_precomputed"]
    spec = list(pre.structured_input_signature[1].values())[0]
    x = {list(pre.structured_input_signature[1])[0]: tf.zeros([1] + spec.shape.as_list()[1:], spec.dtype)}
    _ = pre(**x)
    calls["serving_precomputed"] = (pre, x)
for label, (f, a) in calls.items():
    times = []
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 5):
        t = time.perf_counter()
        _ = {k: v.numpy() for k, v in f(**a).items()}
        times.append(time.perf_counter() - t)
    record[f"{label}_batch1_ms"] = 1000 * sorted(times)[len(times) // 2]
print(json.dumps(record))
"""


def make_video(folder: Path, seconds: float, size: int, quick: bool) -> Path:
    """The 200 fps synthetic long video (frames that are already face crops)."""
    from kerasmer.data.synthetic.video import make_synthetic_video

    events = {"n_micro": 1, "blinks": 1, "head_turns": 0, "macro": 0} if quick else {}  # what fits in 3 s
    return make_synthetic_video(folder / "long.avi", seconds=seconds, fps=200, size=(size, size), seed=0, **events)


def tracking_block(harness: Harness, frames: int, side: int) -> dict:
    """Frames/s of the Haar face tracker on a real face photo (skimage's astronaut) drifting slowly at 200 fps."""
    import cv2
    import numpy as np
    from skimage import data

    from kerasmer.inference import FaceTracker

    photo = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    shifts = (np.sin(np.arange(frames) / 200.0 * 2 * np.pi * 0.3) * side * 0.02).round().astype(int)
    video = [np.roll(photo, int(s), axis=1) for s in shifts]

    def track():
        tracker = FaceTracker("haar", fps=200.0)
        for i, frame in enumerate(video):
            tracker.feed(i, frame)
        tracker.finish()

    return harness.block("face tracking (haar, 200 fps)", {f"{side}x{side}": track}, unit="frames/s", timed=True,
                         work=frames)


def export_models(names: list[str], folder: Path, quick: bool) -> dict:
    """Export each (untrained) model; ``{name: version directory}``."""
    import kerasmer
    from kerasmer.export import export_saved_model

    out = {}
    for name in names:
        info = kerasmer.model_info(name)
        shape = info.test_input_shape if quick and info.test_input_shape else info.input_shape
        model = kerasmer.build_model(name, num_classes=3, input_shape=shape)
        out[name] = export_saved_model(model, folder / name, class_names=["negative", "positive", "surprise"],
                                       metadata={"modality": info.modality}, warmup=False)
    return out


def throughput_block(harness: Harness, video: Path, model_dir: Path) -> dict:
    """Frames/s end to end and per stage; each round runs the video once and its stage rows read that run."""
    from kerasmer.inference import STAGES, load_served_model, run_video

    served = load_served_model(model_dir)
    last = {}

    def end_to_end() -> float:
        result = run_video(video, served, face=None, progress=False, log=lambda s: None)
        last.update(result.timings)
        work = sum(last[f"{s}_s"] for s in STAGES)
        return last["frames"] / work

    configs = {"end to end (4 stages)": end_to_end}
    for stage in STAGES:
        configs[stage] = lambda stage=stage: last["frames"] / max(last[f"{stage}_s"], 1e-9)
    return harness.block("kerasmer predict", configs, unit="frames/s", warmup=1,
                         info={"video": str(video.name), "face": None, "model": served.name,
                               "input_shape": list(served.input_shape)})


def load_block(harness: Harness, exports: dict) -> dict:
    """Seconds to load each SavedModel and call serving_default once, in a fresh process."""
    details = {}

    def child(name: str) -> float:
        done = subprocess.run([sys.executable, "-c", CHILD, str(exports[name])], capture_output=True, text=True,
                              check=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        record = json.loads(done.stdout.strip().splitlines()[-1])
        details.setdefault(name, []).append(record)
        return record["load_s"] + record["first_call_s"]

    block = harness.block("SavedModel load + first call (fresh process)",
                          {name: (lambda name=name: child(name)) for name in exports}, unit="s",
                          higher_is_better=False)
    harness.note("fresh_process_details", details)
    rows = []
    for name, records in details.items():  # medians over the rounds of each child's own medians
        med = {k: sorted(r[k] for r in records)[len(records) // 2] for k in records[0]}
        rows.append((name, f"{med['load_s']:.2f}", f"{med['first_call_s']:.2f}",
                     f"{med.get('serving_default_batch1_ms', float('nan')):.1f}",
                     f"{med.get('serving_precomputed_batch1_ms', float('nan')):.1f}"))
    print_table("| model | load s | first call s | batch-1 ms, serving_default | batch-1 ms, model input |", rows)
    return block


def latency_exports(name: str, folder: Path, quick: bool) -> dict:
    """The four exports of ``name`` the latency blocks compare, all with the same (untrained) weights."""
    import keras

    import kerasmer
    from kerasmer.core.precision import bfloat16_serving_model
    from kerasmer.export import export_saved_model

    info = kerasmer.model_info(name)
    shape = info.test_input_shape if quick and info.test_input_shape else info.input_shape
    keras.utils.set_random_seed(0)
    f32 = kerasmer.build_model(name, num_classes=3, input_shape=shape)
    bf16 = kerasmer.build_model(name, num_classes=3, input_shape=shape, precision="mixed_bfloat16")
    bf16.set_weights(f32.get_weights())  # a mixed model keeps float32 variables: the same values
    models = {"float32": (f32, True), "float32, BN unfolded": (f32, False),
              "bf16": (bfloat16_serving_model(kerasmer.models.fold_batch_norms(bf16)), True),
              "bf16, BN unfolded": (bfloat16_serving_model(bf16), False)}
    return {label: export_saved_model(model, folder / f"latency_{i}", metadata={"modality": info.modality},
                                      warmup=False, fold_batch_norms=fold)
            for i, (label, (model, fold)) in enumerate(models.items())}


# A latency worker: loads the exports once, then times one call per request line "label batch" (ms per frame).
WORKER = r"""
import json, sys, time
import numpy as np, tensorflow as tf
fns = {label: tf.saved_model.load(path).signatures["serving_precomputed"] for label, path in json.loads(sys.argv[1]).items()}
inputs = {}
for line in sys.stdin:
    label, batch = line.split("\t")
    batch = int(batch)
    fn = fns[label]
    name, spec = next(iter(fn.structured_input_signature[1].items()))
    x = inputs.setdefault((label, batch), {name: tf.constant(np.random.default_rng(batch).normal(
        size=[batch] + spec.shape.as_list()[1:]).astype("float32"))})
    t = time.perf_counter()
    _ = {k: v.numpy() for k, v in fn(**x).items()}
    print(1000 * (time.perf_counter() - t) / batch, flush=True)
"""
FROZEN = ("float32", "bf16")  # the exports also timed with TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1


class LatencyWorker:
    """A child process serving timed calls, so that each configuration gets its own process environment."""

    def __init__(self, exports: dict, env: dict):
        paths = json.dumps({label: str(path) for label, path in exports.items()})
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, paths], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", **env})

    def __call__(self, label: str, batch: int) -> float:
        self.proc.stdin.write(f"{label}\t{batch}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"latency worker died (exit status {self.proc.wait()})")
        return float(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def latency_blocks(harness: Harness, name: str, exports: dict, batches: list[int]) -> list[dict]:
    """Milliseconds per frame of ``serving_precomputed`` per export, one interleaved block per batch size.

    Each export is timed in a plain worker process, and the folded float32 and bf16 exports also in one with
    ``TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1`` (oneDNN keeps each conv's reordered weights; docs/serving.md).
    """
    plain = LatencyWorker(exports, {})
    frozen = LatencyWorker({k: exports[k] for k in FROZEN if k in exports}, {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"})
    blocks = []
    try:
        for batch in batches:
            calls = {label: (lambda label=label, batch=batch: plain(label, batch)) for label in exports}
            calls |= {f"{label}, frozen weights": (lambda label=label, batch=batch: frozen(label, batch))
                      for label in FROZEN if label in exports}
            blocks.append(harness.block(f"{name} latency, batch {batch}", calls, unit="ms/frame", warmup=2,
                                        higher_is_better=False, info={"batch": batch}))
    finally:
        plain.close()
        frozen.close()
    return blocks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of the synthetic video (default 20)")
    p.add_argument("--size", type=int, default=128, help="frame side in pixels (default 128)")
    p.add_argument("--track-side", type=int, default=640, help="frame side of the face-tracking block (default 640)")
    p.add_argument("--model", default="learnet", help="the model kerasmer predict runs (default learnet)")
    p.add_argument("--models", default="learnet", help="comma-separated models for the load block, or 'all'")
    p.add_argument("--latency-model", default="larnet", help="the model of the latency blocks ('' skips them)")
    p.add_argument("--batches", default="1,2,4", help="batch sizes of the latency blocks (default 1,2,4)")
    add_arguments(p, rounds=3)
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.size, args.rounds, args.models, args.track_side = 3.0, 64, 1, args.model, 256
        args.batches, args.latency_model = "1", args.latency_model and args.model  # a small model: seconds
    harness = Harness(args, "bench_predict")
    import kerasmer

    names = kerasmer.list_models() if args.models == "all" else args.models.split(",")
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        tmp = Path(tmp)
        video = make_video(tmp, args.seconds, args.size, args.quick)
        exports = export_models(sorted(set(names) | {args.model}), tmp / "saved_models", args.quick)
        throughput_block(harness, video, exports[args.model])
        tracking_block(harness, int(args.seconds * 200) if not args.quick else 100, args.track_side)
        loads = {n: exports[n] for n in names}
        latency = latency_exports(args.latency_model, tmp / "latency", args.quick) if args.latency_model else {}
        if latency:  # what folding the batch norms changed in the load: the same model exported unfolded
            loads[f"{args.latency_model} (BN unfolded)"] = latency["float32, BN unfolded"]
        load_block(harness, loads)
        if latency:
            latency_blocks(harness, args.latency_model, latency, [int(b) for b in args.batches.split(",")])
    harness.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
