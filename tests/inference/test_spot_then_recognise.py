"""Issue 14's "done when": spot-then-recognise on synthetic long videos beats the trivial floors, and a fresh
process that never imports kerasmer gets the label ``kerasmer predict --interval`` gives, from raw frames.
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kerasmer.data import make_synthetic
from kerasmer.data.synthetic.video import make_synthetic_video
from kerasmer.evaluation.spotting import evaluate_spotting
from kerasmer.export import export_saved_model
from kerasmer.inference import run_video
from kerasmer.training import KeepModel, RunConfig, run
from tests.video import read_video

CHILD = r"""
import json, sys
import numpy as np
import tensorflow as tf
args = json.load(open(sys.argv[1]))
fn = tf.saved_model.load(args["model"]).signatures["serving_frames_apex"]
out = fn(frames=tf.constant(np.load(args["frames"])[None]), apex=tf.constant([args["apex"]], tf.int32))
print(json.dumps({"label": out["classes"].numpy()[0].decode(), "probabilities": out["probabilities"].numpy()[0].tolist()}))
"""


def test_a_fresh_process_gets_predict_intervals_label_from_raw_frames(tiny_model, long_video, tmp_path):
    _, base, _ = tiny_model
    truth = pd.read_csv(long_video.with_suffix(".csv")).query("distractor == 0").iloc[0]
    onset, apex, offset = int(truth.onset), int(truth.apex), int(truth.offset)
    result = run_video(long_video, base, interval=f"{onset}:{apex}:{offset}", face=None, progress=False,
                       log=lambda s: None)
    row = result.predictions.iloc[0]
    frames = read_video(long_video, rgb=True)[onset:offset + 1]  # decoded as a client would: OpenCV
    np.save(tmp_path / "frames.npy", frames.astype(np.uint8))
    version = sorted(base.iterdir(), key=lambda p: int(p.name))[-1]
    (tmp_path / "args.json").write_text(json.dumps({"model": str(version), "frames": str(tmp_path / "frames.npy"),
                                                    "apex": apex - onset}))
    (tmp_path / "child.py").write_text(CHILD)
    done = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "args.json")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    probs = [row[c] for c in row.index if c.startswith("prob_")]
    # 128 px frames to a 32 px model: an integer ratio, where the in-graph resize equals OpenCV's exactly.
    np.testing.assert_allclose(served["probabilities"], probs, atol=1e-4)
    assert served["label"] == row["label"]


@pytest.fixture(scope="module")
def trained_export(tmp_path_factory):
    """LEARNet trained briefly on the demo synthetic set (one of two k-fold folds), exported with its normalisation."""
    root = make_synthetic(tmp_path_factory.mktemp("syn"), subjects=6, clips_per_class=3, seed=5)
    keep = KeepModel()
    config = RunConfig(model="learnet", data={"casme2": str(root)}, protocol="kfold", n_splits=2, folds=["k1"],
                       recipe="quickstart", recipe_overrides={"epochs": 15, "batch_size": 8},
                       input_shape=[48, 48, 3], output_dir=str(tmp_path_factory.mktemp("run")), resume=False,
                       baselines=False)
    result = run(config, hooks=[keep], progress=False, log=lambda s: None)
    base = tmp_path_factory.mktemp("export") / "learnet"
    export_saved_model(keep.model, base, class_names=result.class_names, normalization=keep.result.normalization,
                       metadata={"modality": "dynamic_image"}, warmup=False)
    return base, result


def test_spotting_f1_and_strs_beat_the_trivial_floors(trained_export, tmp_path):
    base, _ = trained_export
    preds, truths = [], []
    for seed in (11, 12, 13):
        video = make_synthetic_video(tmp_path / f"v{seed}.avi", seconds=8, fps=100, size=(96, 96), n_micro=2,
                                     seed=seed)
        found = run_video(video, base, face=None, progress=False, log=lambda s: None).predictions
        preds.append(found.assign(video=video.stem)[["video", "onset", "offset", "label"]])
        truths.append(pd.read_csv(video.with_suffix(".csv")).query("distractor == 0").assign(video=video.stem))
    pred, truth = pd.concat(preds), pd.concat(truths)
    ours = evaluate_spotting(pred, truth[["video", "onset", "offset", "label"]])
    # The trivial spotter: as many random intervals of typical length (0.3 s) as there are micro-expressions,
    # each labelled with the commonest true label (the best a label-blind recogniser can do).
    rng, trivial = np.random.default_rng(0), []
    common = truth["label"].mode()[0]
    for _ in range(20):
        rows = []
        for name, n in truth.groupby("video").size().items():
            for onset in rng.integers(0, 800 - 30, n):
                rows.append({"video": name, "onset": int(onset), "offset": int(onset) + 30, "label": common})
        trivial.append(evaluate_spotting(pd.DataFrame(rows), truth[["video", "onset", "offset", "label"]]))
    best_f1 = max(t["f1"] for t in trivial)
    best_strs = max(t["strs"] for t in trivial)
    print(f"spotting F1 {ours['f1']:.3f} STRS {ours['strs']:.3f}; trivial best F1 {best_f1:.3f} STRS {best_strs:.3f}")
    # Measured 2026-11-30: F1 1.000 and STRS 0.513 (the recogniser gets about half the spotted labels right)
    # against the trivial best F1 0.167 and STRS 0.056.  The floors sit between, with room for seed noise.
    assert ours["f1"] >= 0.8 > best_f1
    assert ours["strs"] >= 0.3 > best_strs
