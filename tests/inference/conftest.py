"""Shared fixtures of the inference tests: one tiny exported model and one short synthetic long video.

The model is an untrained LEARNet on 32 x 32 inputs (plumbing, not accuracy), exported once per session with a
normalisation, so that the tests also check that the served input is normalised exactly once.
"""

import json
import shutil

import cv2
import numpy as np
import pytest

import kerasmer
from kerasmer.data.synthetic.video import make_synthetic_video
from kerasmer.export import export_saved_model

CLASSES = ["negative", "positive", "surprise"]
NORMALIZATION = (np.array([110.0, 100.0, 90.0], np.float32), np.array([40.0, 45.0, 50.0], np.float32))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """``(keras model, export base path, .keras path)`` of an untrained 32 x 32 LEARNet with 3 classes."""
    keras_model = kerasmer.build_model("learnet", input_shape=(32, 32, 3), num_classes=3)
    root = tmp_path_factory.mktemp("models")
    base = root / "saved_models" / "learnet"
    export_saved_model(keras_model, base, class_names=CLASSES, normalization=NORMALIZATION,
                       metadata={"modality": "dynamic_image"}, warmup=False)
    keras_path = root / "learnet.keras"
    keras_model.save(keras_path)
    return keras_model, base, keras_path


@pytest.fixture(scope="session")
def long_video(tmp_path_factory):
    """A 3 s, 200 fps, 128 x 128 synthetic long video (already face crops) with one micro-expression and a blink."""
    path = make_synthetic_video(tmp_path_factory.mktemp("video") / "s01.avi", seconds=3.0, fps=200, size=(128, 128),
                                n_micro=1, blinks=1, head_turns=0, macro=0, seed=4)
    return path


@pytest.fixture
def frame_folder(tmp_path, long_video):
    """The long video's first 80 frames as a folder of PNGs (a folder input has no frame rate of its own)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    cap = cv2.VideoCapture(str(long_video))
    for i in range(80):
        ok, frame = cap.read()
        assert ok
        cv2.imwrite(str(folder / f"img{i + 1}.png"), frame)
    cap.release()
    return folder


def copy_export(base, target, edit=None):
    """A copy of an export's newest version whose ``kerasmer.json`` is changed by ``edit(meta)`` (None: removed)."""
    version = sorted(base.iterdir(), key=lambda p: int(p.name))[-1]
    shutil.copytree(version, target)
    meta_file = target / "assets.extra" / "kerasmer.json"
    if edit is None:
        meta_file.unlink()
    else:
        meta = json.loads(meta_file.read_text())
        edit(meta)
        meta_file.write_text(json.dumps(meta))
    return target
