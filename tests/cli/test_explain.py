"""``kerasmer explain`` end to end on tiny trained models: a run directory and a lone .keras file."""

import json

import keras
import matplotlib.image
import numpy as np
import pytest

from kerasmer.cli.main import main
from kerasmer.data import build_input, read_dataset
from kerasmer.training import RunConfig, SaveFoldModels, run


def _train(root, out, model, **overrides):
    config = RunConfig(model=model, data={"casme2": str(root)}, protocol="loso", recipe="quickstart",
                       recipe_overrides={"epochs": 1, "batch_size": 8}, input_shape=[32, 32, 3], folds=["01"],
                       output_dir=str(out), deterministic=False, resume=False, synthetic={}, **overrides)
    run(config, hooks=[SaveFoldModels()], progress=False, log=lambda s: None)
    return out


def _is_picture(path):
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100 and pixels[..., :3].var() > 1e-3, path


@pytest.fixture(scope="module")
def micro_run(synthetic_root, tmp_path_factory):
    return _train(synthetic_root, tmp_path_factory.mktemp("explain") / "run", "micro_attention_resnet",
                  model_overrides={"stage_widths": [8, 8, 8, 8]})


def test_explain_a_run_directory(micro_run, synthetic_root, tmp_path, capsys):
    df = read_dataset("casme2", synthetic_root)
    clip = df[df["subject"] == "01"].iloc[0]
    out = tmp_path / "out"
    assert main(["explain", "--model", str(micro_run), "--data", f"casme2={synthetic_root}",
                 "--clip", f"01/{clip['clip']}", "--out", str(out)]) == 0
    summary = json.loads((out / "explain.json").read_text())
    assert summary["fold"] == "01" and summary["masks"] == "micro-attention"  # the fold that tests subject 01
    assert summary["label"] == clip["emotion"] and summary["predicted"] in summary["probabilities"]
    assert summary["grad_cam_layer"] == "stage4_block1_out"
    assert sum(summary["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    for name in ("gradcam.png", "masks.png", "montage.png"):
        _is_picture(out / name)
    assert "predicted" in capsys.readouterr().out
    # the input is the one training built: the same builder and the fold's normalisation give this prediction
    result = json.loads((micro_run / "folds" / "01" / "result.json").read_text())
    mean, std = (np.asarray(a, np.float32) for a in result["normalization"])
    x = (build_input(clip, modality="frame", input_shape=(32, 32, 3)) - mean) / std
    probs = keras.saving.load_model(micro_run / "folds" / "01" / "model.keras").predict(x[None], verbose=0)[0]
    np.testing.assert_allclose(list(summary["probabilities"].values()), probs, atol=1e-4)


def test_explain_a_keras_file_and_bad_input(micro_run, synthetic_root, tmp_path):
    model_file = micro_run / "folds" / "01" / "model.keras"
    lone = tmp_path / "lone.keras"
    lone.write_bytes(model_file.read_bytes())
    classes = json.loads((micro_run / "run.json").read_text())["class_names"]
    df = read_dataset("casme2", synthetic_root)
    clip = f"02/{df[df['subject'] == '02'].iloc[0]['clip']}"
    out = tmp_path / "out"
    assert main(["explain", "--model", str(lone), "--data", f"casme2={synthetic_root}", "--clip", clip,
                 "--out", str(out), "--layer", "stage3_block1_out"]) == 0
    summary = json.loads((out / "explain.json").read_text())
    assert summary["fold"] is None and summary["grad_cam_layer"] == "stage3_block1_out"
    assert list(summary["probabilities"]) == ["class 0", "class 1", "class 2"][:len(classes)]
    base = ["explain", "--model", str(micro_run), "--data", f"casme2={synthetic_root}", "--out", str(out)]
    with pytest.raises(SystemExit, match="no such clip"):
        main([*base, "--clip", "01/EP99"])
    with pytest.raises(SystemExit, match="SUBJECT/EPISODE"):
        main([*base, "--clip", "01"])
    with pytest.raises(SystemExit, match="--fold '07'"):
        main([*base, "--clip", clip, "--fold", "07"])
    with pytest.raises(SystemExit, match="no layer 'nope'"):
        main([*base, "--clip", clip, "--layer", "nope"])
    with pytest.raises(SystemExit, match="--class 'joy'"):
        main([*base, "--clip", clip, "--class", "joy"])
    with pytest.raises(SystemExit, match=r"trained on \['casme2'\], not the synthetic set"):
        main(["explain", "--model", str(micro_run), "--synthetic", "--clip", clip, "--out", str(out)])
    with pytest.raises(SystemExit, match="expected a .keras file or a run directory"):
        main(["explain", "--model", str(tmp_path / "nothing"), "--synthetic", "--clip", clip, "--out", str(out)])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text((micro_run / "config.json").read_text())
    with pytest.raises(SystemExit, match="holds no trained model"):
        main(["explain", "--model", str(tmp_path / "empty"), "--synthetic", "--clip", clip, "--out", str(out)])
