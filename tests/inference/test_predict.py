"""``kerasmer predict`` and :mod:`kerasmer.inference`: the outputs, the same input as training, bad input."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from kerasmer.cli.main import main
from kerasmer.data.pipeline.inputs import input_from_frames
from kerasmer.data.preprocess.spotting import spot_intervals
from kerasmer.inference import STAGES, InferenceError, load_served_model, predict_video, resample_positions
from kerasmer.inference.pipeline import BASE_COLUMNS, parse_interval

from tests.inference.conftest import CLASSES, NORMALIZATION, copy_export
from tests.video import read_video


def _video_frames(path) -> np.ndarray:
    return read_video(path, rgb=True)


def _expected_probabilities(keras_model, frames, onset, apex, offset):
    """What training would feed the model for these frames: input_from_frames, then the export's normalisation."""
    x = input_from_frames(frames[onset:offset + 1], "dynamic_image", (32, 32, 3), apex=apex - onset)
    x = (x - NORMALIZATION[0]) / NORMALIZATION[1]
    return keras_model.predict(x[None], verbose=0)[0]


def test_predict_writes_every_output_with_the_right_columns(tiny_model, long_video, tmp_path, capsys):
    _, base, _ = tiny_model
    out = tmp_path / "pred"
    rc = main(["predict", str(long_video), "--model", str(base), "--out", str(out), "--face", "none",
               "--video-out"])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "frames 600/600 (100%)" in printed  # the progress lines (stdout is not a terminal under pytest)
    df = pd.read_csv(out / "predictions.csv")
    assert list(df.columns) == BASE_COLUMNS + ["spot_score"] + [f"prob_{c}" for c in CLASSES]
    # exactly what the spotter finds on the same frames (one window: the frames are already face crops)
    spotted = spot_intervals(_video_frames(long_video), 200.0)
    assert df[["onset", "apex", "offset"]].values.tolist() == [[iv.onset, iv.apex, iv.offset] for iv in spotted]
    np.testing.assert_allclose(df["spot_score"].astype(float), [iv.score for iv in spotted], rtol=1e-5)
    assert set(df["label"]) <= set(CLASSES)
    np.testing.assert_allclose(df[[f"prob_{c}" for c in CLASSES]].astype(float).sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(df["onset_s"].astype(float), df["onset"].astype(float) / 200.0)
    assert ((df["onset"] <= df["apex"]) & (df["apex"] <= df["offset"])).all()
    doc = json.loads((out / "predictions.json").read_text())
    assert [r["onset"] for r in doc["predictions"]] == df["onset"].tolist()
    assert doc["fps"] == 200.0 and doc["frames"] == 600 and doc["model"]["class_names"] == CLASSES
    timings = json.loads((out / "timings.json").read_text())
    assert all(timings[f"{s}_s"] >= 0 for s in STAGES) and timings["frames"] == 600
    png = (out / "motion_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    annotated = cv2.VideoCapture(str(out / "annotated.avi"))
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 600
    annotated.release()


@pytest.mark.parametrize("kind", ["saved_model", "keras"])
def test_interval_gives_the_keras_models_label_on_the_training_input(tiny_model, long_video, tmp_path, kind):
    keras_model, base, keras_path = tiny_model
    if kind == "keras":  # a .keras file holds no normalisation: a sidecar JSON gives it
        keras_path = Path(shutil.copy(keras_path, tmp_path / "learnet.keras"))
        sidecar = keras_path.with_name(keras_path.name + ".json")
        sidecar.write_text(json.dumps({"class_names": CLASSES, "normalization": {
            "mean": NORMALIZATION[0].tolist(), "std": NORMALIZATION[1].tolist()}}))
    model = base if kind == "saved_model" else keras_path
    onset, apex, offset = 150, 180, 230
    df = predict_video(long_video, model, interval=f"{onset}:{apex}:{offset}", face=None, progress=False,
                       out=tmp_path / "out", log=lambda s: None)
    expected = _expected_probabilities(keras_model, _video_frames(long_video), onset, apex, offset)
    assert df[["onset", "apex", "offset"]].values.tolist() == [[onset, apex, offset]]
    assert df["label"].iloc[0] == CLASSES[int(np.argmax(expected))]
    np.testing.assert_allclose(df[[f"prob_{c}" for c in CLASSES]].values[0], expected, atol=1e-5)
    assert np.isnan(df["spot_score"].iloc[0])  # not spotted: given
    written = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert written["label"].tolist() == df["label"].tolist()
    np.testing.assert_allclose(written[df.columns[7:]].values, df[df.columns[7:]].values, rtol=1e-6)
    doc = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert doc["predictions"][0]["spot_score"] is None and doc["predictions"][0]["label"] == df["label"].iloc[0]


def test_a_keras_fold_model_takes_its_runs_class_names_and_normalisation(tiny_model, tmp_path):
    _, _, keras_path = tiny_model
    fold = tmp_path / "run" / "folds" / "01"
    fold.mkdir(parents=True)
    shutil.copy(keras_path, fold / "model.keras")
    (tmp_path / "run" / "run.json").write_text(json.dumps({"class_names": CLASSES}))
    (fold / "result.json").write_text(json.dumps({"normalization": [NORMALIZATION[0].tolist(),
                                                                    NORMALIZATION[1].tolist()]}))
    served = load_served_model(fold / "model.keras")
    assert served.class_names == CLASSES and served.modality == "dynamic_image"
    np.testing.assert_array_equal(served.normalization[1], NORMALIZATION[1])
    lone = load_served_model(keras_path)  # no run, no sidecar: nothing to normalise with
    assert lone.normalization is None and lone.class_names == ["class0", "class1", "class2"]


def test_a_frame_folder_at_another_rate_is_resampled_to_the_models(tiny_model, frame_folder):
    keras_model, base, _ = tiny_model
    served = load_served_model(base)
    assert served.fps == 200.0 and served.modality == "dynamic_image" and served.class_names == CLASSES
    df = predict_video(frame_folder, served, fps=100.0, interval=(10, 20, 40), face=None, progress=False,
                       log=lambda s: None)
    frames = _video_frames(frame_folder / "img%d.png")  # OpenCV reads an image sequence by its pattern
    positions = resample_positions(31, 100.0, 200.0)
    assert len(positions) == 61 and positions[0] == 0 and positions[-1] == 30
    x = input_from_frames(frames[10:41][positions], "dynamic_image", (32, 32, 3), apex=20)
    expected = keras_model.predict(((x - NORMALIZATION[0]) / NORMALIZATION[1])[None], verbose=0)[0]
    np.testing.assert_allclose(df[[f"prob_{c}" for c in CLASSES]].values[0], expected, atol=1e-5)
    assert df["offset_s"].iloc[0] == pytest.approx(0.4)  # seconds at the folder's 100 fps


@pytest.mark.parametrize("flags, message", [(["--video-out"], "--video-out needs --out DIR"),
                                            (["--out", "o", "--p", "1.5"], "--p must lie in [0, 1), got 1.5"),
                                            (["--out", "o", "--max-duration", "0"],
                                             "--max-duration must be positive, got 0.0")])
def test_predict_flags_are_checked_first(flags, message, capsys):
    assert main(["predict", "no-such-video.avi", "--model", "no-such-model", *flags]) == 2
    assert capsys.readouterr().err.strip() == f"kerasmer predict: {message}"


def test_parse_interval_rejects_malformed_text():
    assert parse_interval("3:4:9") == (3, 4, 9)
    for bad in ["3:4", "a:b:c", "9:4:3", "-1:0:2"]:
        with pytest.raises(InferenceError, match=r"--interval"):
            parse_interval(bad)


# ------------------------------------------------------------------ bad input: one line naming the file


def _write_video(path, frames, fps=25.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames.shape[1:3][::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def _case(name, tmp_path, tiny_model):
    """(argv, the path the message must name, a phrase of it)."""
    _, base, _ = tiny_model
    video = tmp_path / "v.avi"
    if name == "unreadable video":
        video.write_text("not a video")
        return [str(video), "--model", str(base)], video, "cannot open it as a video"
    if name == "empty file":
        video.write_bytes(b"")
        return [str(video), "--model", str(base)], video, "cannot open it as a video"
    if name == "video without frames":  # a valid AVI container, no frame written
        cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 64)).release()
        return [str(video), "--model", str(base)], video, "no readable frame (empty or corrupt)"
    if name == "no face":
        rng = np.random.default_rng(0)
        _write_video(video, rng.integers(0, 255, (12, 96, 128, 3), dtype=np.uint8))
        return [str(video), "--model", str(base)], video, "no face found by the 'haar' detector"
    _write_video(video, np.full((12, 64, 64, 3), 128, np.uint8))
    if name == "fps 0":
        return [str(video), "--model", str(base), "--fps", "0", "--face", "none"], video, "frame rate 0.0 from --fps"
    if name == "folder without fps":
        folder = tmp_path / "frames"
        folder.mkdir()
        cv2.imwrite(str(folder / "img1.png"), np.zeros((16, 16, 3), np.uint8))
        return [str(folder), "--model", str(base), "--face", "none"], folder, "missing or not positive; pass --fps"
    if name == "SavedModel of another program":
        other = copy_export(base, tmp_path / "other" / "1")
        return [str(video), "--model", str(other.parent), "--face", "none"], other, "another program"
    if name == "modality not servable from frames":
        odd = copy_export(base, tmp_path / "odd" / "1", lambda m: m.update(modality="landmarks"))
        return [str(video), "--model", str(odd), "--face", "none"], odd, "modality 'landmarks', which cannot be built"
    if name == "interval past the end":
        return [str(video), "--model", str(base), "--face", "none", "--interval", "2:5:40"], video, "after the last"
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["unreadable video", "empty file", "video without frames", "no face", "fps 0",
                                  "folder without fps", "SavedModel of another program",
                                  "modality not servable from frames", "interval past the end"])
def test_bad_input_is_one_line_naming_the_file(name, tiny_model, tmp_path, capsys):
    argv, path, phrase = _case(name, tmp_path, tiny_model)
    rc = main(["predict", *argv, "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and phrase in err, err
    assert not (tmp_path / "out" / "predictions.csv").exists()
