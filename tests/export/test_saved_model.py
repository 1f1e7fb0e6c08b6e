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
from kerasmer.data.pipeline.inputs import input_from_frames
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
    # raw face crops, a 2 x 2 shrink to the input (exact in-graph): smooth random frames of one clip
    clip = np.repeat(rng.integers(0, 256, (9, 8, 8, 3), dtype=np.uint8), 8, axis=1).repeat(8, axis=2)
    clip = np.clip(clip.astype(int) + rng.integers(-20, 20, clip.shape), 0, 255).astype(np.uint8)
    mean, std = np.array([100.0, 110.0, 120.0]), np.array([50.0, 60.0, 70.0])
    out = export_saved_model(model, tmp_path / "learnet", class_names=CLASSES, normalization=(mean, std))
    expected = model.predict((x - mean) / std, verbose=0)
    raw_input = input_from_frames(clip, "dynamic_image", (32, 32, 3))  # the apex: the middle frame, as served
    expected_raw = model.predict((raw_input[None] - mean) / std, verbose=0)[0]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "clip.npy", clip[None])
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        m = tf.saved_model.load({str(out)!r})
        fn = m.signatures["serving_precomputed"]
        spec = fn.structured_input_signature[1]
        assert list(spec.values())[0].shape.as_list()[0] is None, spec   # free batch dimension
        x = np.load({str(tmp_path / "x.npy")!r})
        y = fn(tf.constant(x))["probabilities"].numpy()
        y1 = fn(tf.constant(x[:1]))["probabilities"].numpy()
        np.save({str(tmp_path / "y.npy")!r}, y)
        np.save({str(tmp_path / "y1.npy")!r}, y1)
        raw = m.signatures["serving_default"](frames=tf.constant(np.load({str(tmp_path / "clip.npy")!r})))
        np.save({str(tmp_path / "y_raw.npy")!r}, raw["probabilities"].numpy())
        print(raw["classes"].numpy()[0].decode())
        print("kerasmer" in sys.modules)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    label, imported = res.stdout.strip().splitlines()[-2:]
    assert imported == "False"  # the server never imported kerasmer
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "y1.npy"), expected[:1], rtol=1e-5, atol=1e-6)
    # raw uint8 frames in, the Keras model's label on input_from_frames out
    assert label == CLASSES[int(expected_raw.argmax())]
    np.testing.assert_allclose(np.load(tmp_path / "y_raw.npy")[0], expected_raw, rtol=1e-4, atol=1e-5)

    cli = subprocess.run(["saved_model_cli", "show", "--dir", str(out), "--all"], capture_output=True,
                         text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "signature_def['serving_precomputed']" in cli.stdout
    assert "shape: (-1, 32, 32, 3)" in cli.stdout
    assert "probabilities" in cli.stdout
    default = cli.stdout.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "inputs['frames']" in default and "dtype: DT_UINT8" in default and "(-1, -1, -1, -1, 3)" in default
    assert "outputs['classes']" in default and "dtype: DT_STRING" in default
    jpeg = cli.stdout.split("signature_def['serving_bytes']")[1].split("signature_def[")[0]
    assert "inputs['frames_bytes']" in jpeg and "dtype: DT_STRING" in jpeg and "shape: (-1, -1)" in jpeg


def test_each_weight_is_stored_once(model, tmp_path):
    # issue 16: ExportArchive wrote every weight twice (as the Keras variable and under `_all_variables`);
    # the export now packs each dtype's weights into one variable (kerasmer.export.packing).
    import tensorflow as tf

    out = export_saved_model(model, tmp_path / "learnet")
    model = kerasmer.models.fold_batch_norms(model)  # what is served: the inference graph (fewer weights)
    meta = json.loads((out / "assets.extra" / "kerasmer.json").read_text())
    assert meta["batch_norms"] == {k: len(v) for k, v in model.folding.items()}
    assert meta["weights"]["count"] == len(model.weights)
    entries = dict(tf.train.list_variables(str(out / "variables" / "variables")))
    entries.pop("_CHECKPOINTABLE_OBJECT_GRAPH")  # the object graph is stored as one string entry, not a weight
    assert sorted(entries) == ["weights_float32/.ATTRIBUTES/VARIABLE_VALUE"]
    values = sum(int(np.prod(shape)) for shape in entries.values())
    assert model.count_params() <= values <= model.count_params() + 16 * len(model.weights)  # 64-byte alignment
    weight_bytes = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    folder_bytes = sum(p.stat().st_size for p in (out / "variables").iterdir())
    assert weight_bytes <= folder_bytes <= 1.05 * weight_bytes, (folder_bytes, weight_bytes)
    # every weight comes back by name, as the model holds it
    unpacked = kerasmer.export.unpack_weights(out)
    assert list(unpacked) == [w.path for w in model.trainable_weights + model.non_trainable_weights]
    for w in model.weights:
        np.testing.assert_array_equal(unpacked[w.path], w.numpy())


def test_packed_weights_start_on_64_byte_boundaries():
    # A 1-D Slice that starts on Eigen's alignment returns a view of the buffer, not a copy (packing.py).
    import keras

    from kerasmer.export.packing import ALIGN_BYTES, pack_weights

    model = _tiny_conv_model()
    buffers, layout = pack_weights(model)
    assert {w["dtype"] for w in layout} == {"float32"}
    for w in layout:
        assert (w["offset"] * 4) % ALIGN_BYTES == 0, w
        size = int(np.prod(w["shape"]))
        weight = {v.path: v for v in model.weights}[w["name"]]
        np.testing.assert_array_equal(buffers["float32"][w["offset"]:w["offset"] + size].reshape(w["shape"]),
                                      keras.ops.convert_to_numpy(weight.value))
    ends = sorted((w["offset"], w["offset"] + int(np.prod(w["shape"]))) for w in layout)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ends, ends[1:]))  # no overlap


def test_unpack_weights_names_a_folder_that_is_not_a_packed_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights.json"):
        kerasmer.export.unpack_weights(tmp_path)


def test_batch_norms_are_folded_unless_asked_not_to(tmp_path):
    import tensorflow as tf

    model = _tiny_conv_model()
    kept = export_saved_model(model, tmp_path / "kept", modality="frame", warmup=False, fold_batch_norms=False)
    folded = export_saved_model(model, tmp_path / "folded", modality="frame", warmup=False)
    count = {path: json.loads((path / "assets.extra" / "kerasmer.json").read_text())["weights"]["count"]
             for path in (kept, folded)}
    assert count[kept] - count[folded] == 4  # bn_a's gamma, beta, moving mean and variance
    assert json.loads((kept / "assets.extra" / "kerasmer.json").read_text())["batch_norms"] == {}
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    outs = [tf.saved_model.load(str(p)).signatures["serving_precomputed"](tf.constant(x))["probabilities"].numpy()
            for p in (kept, folded)]
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)


def _tiny_conv_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.Conv2D(4, 3, name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # Two hidden dense layers: with bn_a folded the model keeps 10 weights, more than any serving helper
    # function (tf.map's loop bodies take 6 to 8 inputs), which the capture count below relies on.
    x = keras.layers.Dense(8, name="fc_a")(x)
    x = keras.layers.Dense(8, name="fc_b")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x), name="tiny_conv")


def test_the_model_graph_is_stored_once(tmp_path):
    # issue 16: a fresh process imports every function of saved_model.pb into a Python graph, with a placeholder
    # per captured weight, so load time grows with (copies of the model) x (functions taking every weight).
    from tensorflow.core.protobuf import saved_model_pb2

    model = _tiny_conv_model()
    out = export_saved_model(model, tmp_path / "tiny", modality="frame", warmup=False)
    model = kerasmer.models.fold_batch_norms(model)  # bn_a folded into conv_a: 10 weights, not 14
    assert len(model.weights) == 10
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((out / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0]
    keys = set(graph.signature_def) - {"__saved_model_init_op"}
    assert keys == {"serve", "serving_default", "serving_frames_apex", "serving_bytes", "serving_precomputed"}
    library = graph.graph_def.library.function
    convs = [fn.signature.name for fn in library for node in fn.node_def if node.op == "Conv2D"]
    # the model's two convolutions, in one function that every signature calls (not one copy per signature)
    assert len(convs) == 2 and len(set(convs)) == 1, convs
    reads = [fn.signature.name for fn in library for node in fn.node_def if node.op == "ReadVariableOp"
             and "traced_save" not in fn.signature.name]
    # the packed weights (kerasmer.export.packing): one read of the one float32 buffer, in the model's function,
    # and one slice per weight
    assert len(reads) == 1 and set(reads) == set(convs)
    slices = [node for fn in library if fn.signature.name == convs[0] for node in fn.node_def if node.op == "Slice"]
    assert len(slices) == len(model.weights)
    # no per-layer Keras call functions are saved
    layer_fns = [fn.signature.name for fn in library for layer in model.layers if layer.name in fn.signature.name]
    assert not layer_fns, layer_fns
    # No function takes an input per weight (before packing, every signature's wrapper, the signature functions
    # and the checkpoint's save and restore did): the longest input lists are tf.map's loop bodies (6 to 8).
    widest = max(library, key=lambda fn: len(fn.signature.input_arg))
    assert len(widest.signature.input_arg) < len(model.weights), widest.signature.name
