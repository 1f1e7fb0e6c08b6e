"""Bad input at kerasmer's edges: every error names the argument, field, file or row, and what is expected.

One case per kind of input from issue 11 (finding 8) plus the ones a user would hit next to them.  The lock and
the diverging loss are in ``tests/core/test_lock.py`` and ``tests/training/test_bad_input_training.py``.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasmer
from kerasmer.cli.main import main
from kerasmer.core.lock import RunLock
from kerasmer.data import AnnotationError
from kerasmer.data.readers._common import to_frame
from kerasmer.export import export_saved_model
from kerasmer.training import RunConfig


@pytest.mark.parametrize("num_classes", [0, -1, 2.7, "three", True])
def test_build_model_num_classes_must_be_a_positive_integer(num_classes):
    with pytest.raises(ValueError, match=rf"build_model\('learnet'\): num_classes must be a positive integer.*"
                                         rf"got {num_classes!r}"):
        kerasmer.build_model("learnet", num_classes=num_classes, input_shape=(32, 32, 3))


@pytest.mark.parametrize("model, shape, expected", [
    ("learnet", (32, 32), r"\(height, width, channels\) for a dynamic_image model.*of rank 2"),
    ("learnet", "32,32,3", r"\(height, width, channels\).*got '32,32,3' \(str\)"),
    ("learnet", (32, 0, 3), r"\(height, width, channels\).*got \(32, 0, 3\), whose \[0\] are not positive integers"),
    ("meranet18", (112, 112, 3), r"\(frames, height, width, channels\) for a clip model.*\(16, 112, 112, 3\)"),
])
def test_build_model_input_shape_names_the_expected_shape(model, shape, expected):
    with pytest.raises(ValueError, match=rf"build_model\('{model}'\): input_shape must be {expected}"):
        kerasmer.build_model(model, input_shape=shape)


@pytest.mark.parametrize("fields, expected", [
    ({"seed": -1}, r"config seed: expected an integer in \[0, 2\*\*31\), got -1"),
    ({"seed": "0"}, r"config seed: expected int, got '0'"),
    ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\), got 1.0"),
    ({"checkpoint_every": -5}, r"config: checkpoint_every must be >= 0 seconds, got -5"),
    ({"synthetic": {"subject": 4}}, r"config synthetic: unknown option\(s\) \['subject'\]; make_synthetic accepts"),
    ({"synthetic": {"subjects": 0}}, r"config synthetic: subjects must be a positive integer, got 0"),
    ({"precision": "fp8"}, r"config precision: Unknown precision 'fp8'"),
    ({"input_shape": [32, 0, 3]}, r"config input_shape: input_shape must be \(height, width, channels\)"),
    ({"verbose": 7}, r"config verbose: expected 0, 1 or 2, got 7"),
    ({"deterministic": "yes"}, r"config deterministic: expected bool, got 'yes'"),
    ({"model_overrides": {"widht": 2}}, r"config model_overrides: 'learnet' has no option\(s\) \['widht'\]"),
    ({"init_from": "no/such/weights.keras"}, r"config init_from: no such file no/such/weights.keras"),
])
def test_run_config_names_the_bad_field(fields, expected, tmp_path):
    with pytest.raises(ValueError, match=expected):
        RunConfig(output_dir=str(tmp_path / "run"), **fields)


def test_run_config_rejects_an_output_dir_it_cannot_write(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=rf"config output_dir: {blocker}/run cannot be created, because {blocker} "
                                         "is a file"):
        RunConfig(output_dir=str(blocker / "run"))
    with pytest.raises(ValueError, match=rf"config output_dir: {blocker} exists and is not a directory"):
        RunConfig(output_dir=str(blocker))
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match=rf"config output_dir: {locked} is not writable"):
            RunConfig(output_dir=str(locked / "run"))


def test_a_config_file_with_a_wrong_synthetic_key_names_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(f"synthetic: {{subject: 4}}\noutput_dir: {tmp_path / 'run'}\n")
    with pytest.raises(SystemExit, match=rf"kerasmer train: config synthetic: unknown option\(s\) \['subject'\]"):
        main(["train", "--config", str(path)])


@pytest.mark.parametrize("argv, expected", [
    (["--set", "epochs=0"], r"recipe 'learnet': epochs must be >= 1, got 0"),
    (["--input-shape", "32,0,3"], r"config input_shape: .*got \(32, 0, 3\), whose \[0\] are not positive integers"),
    (["--input-shape", "32,32"], r"config input_shape: .*of rank 2"),
    (["--seed", "-3"], r"config seed: expected an integer in \[0, 2\*\*31\), got -3"),
    (["--val-fraction", "1.0"], r"config: val_fraction must be in \[0, 1\), got 1.0"),
    (["--checkpoint-every", "-1"], r"config: checkpoint_every must be >= 0 seconds, got -1.0"),
    (["--subjects", "0"], r"config synthetic: subjects must be a positive integer, got 0"),
])
def test_kerasmer_train_flags_fail_before_any_data_is_read(argv, expected, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=rf"kerasmer train: {expected}"):
        main(["train", "--synthetic", "--model", "learnet", "--out", str(out), *argv])
    assert not out.exists()  # nothing read or written


def test_kerasmer_train_into_a_busy_run_directory_names_the_holder(tmp_path):
    out = tmp_path / "run"
    with RunLock(out):
        with pytest.raises(SystemExit, match=rf"kerasmer train: run directory {out} is in use by pid {os.getpid()} "
                                             r"on host \S+ since \d{4}-"):
            main(["train", "--synthetic", "--model", "learnet", "--epochs", "1", "--out", str(out)])
    assert not (out / "synthetic_data").exists()  # refused before the data was written or read


def test_a_duplicated_clip_lists_its_rows():
    row = dict(dataset="casme2", subject="sub01", clip="EP01", emotion="happiness", onset=1, apex=5, offset=9,
               apex_missing=False)
    rows = [dict(row, source="CASME2.xlsx row 3"), dict(row, clip="EP02", source="CASME2.xlsx row 4"),
            dict(row, source="CASME2.xlsx row 7")]
    listed = r"sub01/EP01 is annotated twice \(CASME2.xlsx row 3, CASME2.xlsx row 7\)"
    with pytest.raises(AnnotationError, match=listed):
        to_frame(rows, dataset="casme2", file="CASME2.xlsx")


def _run_dir_with_damaged_result(tmp_path):
    run = tmp_path / "run"
    (run / "folds" / "01").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"class_names": ["a", "b"], "protocol": "loso", "folds": ["01"],
                                              "label_column": "emotion", "subject_dependent": False}))
    (run / "folds" / "01" / "result.json").write_text('{"name": "01", "y_true": [0, 1], "y_pr')  # truncated
    return run


def test_kerasmer_evaluate_names_a_truncated_result_file(tmp_path):
    run = _run_dir_with_damaged_result(tmp_path)
    with pytest.raises(SystemExit, match=rf"kerasmer evaluate: {run}/folds/01/result.json: damaged fold record"):
        main(["evaluate", str(run)])


def _tiny_model():
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))


def test_export_checks_the_normalization_channels_against_the_model_input(tmp_path):
    four = (np.zeros(4, "float32"), np.ones(4, "float32"))
    with pytest.raises(ValueError, match=r"normalization mean has 4 values, but .* input has 3 channels"):
        export_saved_model(_tiny_model(), tmp_path / "m", normalization=four)
    assert not (tmp_path / "m").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_export_removes_the_stale_temporaries_of_dead_exports_only(tmp_path):
    base = tmp_path / "m"
    dead, live = base / f".tmp-{_dead_pid()}-0123abcd-1", base / f".tmp-{os.getppid()}-0123abcd-2"
    for d in (dead, live):
        (d / "variables").mkdir(parents=True)
    out = export_saved_model(_tiny_model(), base)
    assert out == base / "1" and (out / "saved_model.pb").is_file()
    assert not dead.exists() and live.exists()  # a live process may be writing its own
