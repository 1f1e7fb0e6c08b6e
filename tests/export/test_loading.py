"""load_exported: the newest version of a base path, its metadata, and one-line errors for everything else."""

import json

import keras
import pytest
import tensorflow as tf

from kerasmer.export import ExportError, export_saved_model, load_exported


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled), name="tiny_frame")


def test_resolves_the_newest_version_and_reads_the_metadata(tiny, tmp_path):
    base = tmp_path / "saved_models" / "tiny"
    export_saved_model(tiny, base, class_names=["calm", "moved"], modality="frame")
    export_saved_model(tiny, base, version=10, class_names=["calm", "moved"], modality="frame")
    export_saved_model(tiny, base, version=9, modality="frame")
    exported = load_exported(base)
    assert exported.version == 10 and exported.path == base / "10"
    assert exported.class_names == ["calm", "moved"]
    assert exported.metadata["modality"] == "frame" and exported.raw_frames
    assert load_exported(base / "9").class_names is None
    out = exported.load().signatures["serving_default"](frames=tf.zeros((1, 3, 8, 8, 3), tf.uint8))
    assert out["classes"].numpy()[0] in (b"calm", b"moved")


def test_one_line_errors_name_the_path(tiny, tmp_path):
    other = tmp_path / "other"  # a SavedModel another program wrote: no assets.extra/kerasmer.json
    tf.saved_model.save(tf.Module(), str(other / "1"))
    cases = {
        tmp_path / "missing": "no such file or directory",
        other: "a SavedModel from another program",
        tmp_path: "neither a SavedModel",
    }
    (tmp_path / "file.txt").write_text("x")
    cases[tmp_path / "file.txt"] = "not a SavedModel directory"
    for path, what in cases.items():
        with pytest.raises(ExportError) as err:
            load_exported(path)
        message = str(err.value)
        assert what in message and "\n" not in message
        assert str(path) in message or str(other / "1") in message
    broken = export_saved_model(tiny, tmp_path / "broken", modality="frame")
    (broken / "assets.extra" / "kerasmer.json").write_text("{not json")
    with pytest.raises(ExportError, match="kerasmer.json: unreadable kerasmer metadata"):
        load_exported(broken)
    (broken / "assets.extra" / "kerasmer.json").write_text(json.dumps({"model": "x"}))
    with pytest.raises(ExportError, match="no input_shape"):
        load_exported(broken)
    assert issubclass(ExportError, ValueError)
