"""SavedModel export: TF Serving layout, atomic versions, and a reload in a fresh process.

The fresh process imports only TensorFlow (never kerasmer), as a server would.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kerasmer
from kerasmer.export import export_saved_model, load_class_names, next_version

CLASSES = ["negative", "positive", "surprise"]


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    return kerasmer.build_model("learnet", num_classes=3, input_shape=(32, 32, 3))


def test_versions_layout_and_class_names(model, tmp_path):
    base = tmp_path / "saved_models" / "learnet"
    assert next_version(base) == 1
    v1 = export_saved_model(model, base, class_names=CLASSES)
    v2 = export_saved_model(model, base, class_names=CLASSES)
    assert (v1.name, v2.name) == ("1", "2")
    assert (v1 / "saved_model.pb").is_file() and (v1 / "variables").is_dir()
    assert load_class_names(v1) == CLASSES
    meta = json.loads((v1 / "assets.extra" / "kerasmer.json").read_text())
    assert meta["input_shape"] == [32, 32, 3] and meta["num_classes"] == 3
    # no temporary directories are left beside the versions
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]
    with pytest.raises(ValueError, match="already exists"):
        export_saved_model(model, base, version=1)
    with pytest.raises(ValueError, match="class_names"):
        export_saved_model(model, base, class_names=["a", "b"])
    with pytest.raises(ValueError, match="version"):
        export_saved_model(model, base, version=-3)


def test_failed_write_leaves_no_partial_version(model, tmp_path, monkeypatch):
    from kerasmer.export import saved_model as sm

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    # fail at the last step, after the SavedModel was written to the temporary folder
    monkeypatch.setattr(sm.os, "replace", boom)
    base = tmp_path / "m"
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(model, base)
    assert list(base.iterdir()) == []


def test_fresh_process_reload_and_saved_model_cli(model, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(5, 32, 32, 3)).astype("float32")
    mean, std = np.array([100.0, 110.0, 120.0]), np.array([50.0, 60.0, 70.0])
    out = export_saved_model(model, tmp_path / "learnet", class_names=CLASSES, normalization=(mean, std))
    expected = model.predict((x - mean) / std, verbose=0)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        m = tf.saved_model.load({str(out)!r})
        fn = m.signatures["serving_default"]
        spec = fn.structured_input_signature[1]
        assert list(spec.values())[0].shape.as_list()[0] is None, spec   # free batch dimension
        x = np.load({str(tmp_path / "x.npy")!r})
        y = fn(tf.constant(x))["probabilities"].numpy()
        y1 = fn(tf.constant(x[:1]))["probabilities"].numpy()
        np.save({str(tmp_path / "y.npy")!r}, y)
        np.save({str(tmp_path / "y1.npy")!r}, y1)
        print("kerasmer" in sys.modules)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "False"  # the server never imported kerasmer
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "y1.npy"), expected[:1], rtol=1e-5, atol=1e-6)

    cli = subprocess.run(["saved_model_cli", "show", "--dir", str(out), "--all"], capture_output=True,
                         text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "signature_def['serving_default']" in cli.stdout
    assert "shape: (-1, 32, 32, 3)" in cli.stdout
    assert "probabilities" in cli.stdout


def test_each_weight_is_stored_once(model, tmp_path):
    # issue 16: ExportArchive wrote every weight twice (as the Keras variable and under `_all_variables`).
    import tensorflow as tf

    out = export_saved_model(model, tmp_path / "learnet")
    entries = dict(tf.train.list_variables(str(out / "variables" / "variables")))
    assert not [key for key in entries if key.startswith("_all_variables")]
    # the object graph is stored as one string entry, not a weight
    entries.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
    values = sum(int(np.prod(shape)) for shape in entries.values())
    assert values == model.count_params()
    assert len(entries) == len(model.weights)
    weight_bytes = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    folder_bytes = sum(p.stat().st_size for p in (out / "variables").iterdir())
    assert weight_bytes <= folder_bytes <= 1.05 * weight_bytes, (folder_bytes, weight_bytes)
