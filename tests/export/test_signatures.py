"""Raw-frame serving signatures: no train/serve skew, standard ops only, flow's precomputed default.

Tiny models (a dense layer on the flattened input) of each in-graph modality are exported and called on
synthetic clips; their labels must equal the Keras model's on ``input_from_frames`` inputs, the Python
pipeline training uses.
"""

import json

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from kerasmer.data import load_clip, make_synthetic, read_dataset
from kerasmer.data.pipeline.inputs import input_from_frames
from kerasmer.export import export_saved_model, load_exported
from kerasmer.export.signatures import PRECOMPUTED, serving_functions
from kerasmer.inference.model import _graph_call
from kerasmer.layers import Conv2D, Dense
from tests.layers.test_bias_gradient import op_types

CLASSES = ["negative", "positive", "surprise"]
MEAN, STD = 120.0, 40.0
CASES = {  # name: (modality, input shape, sampler)
    "tiny_di": ("dynamic_image", (32, 32, 3), None),
    "tiny_frame": ("frame", (24, 24, 1), None),
    "tiny_clip": ("clip", (5, 16, 16, 3), "apex_middle"),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Synthetic clips (frames onset..offset, annotated apex position), one per class."""
    root = make_synthetic(tmp_path_factory.mktemp("syn"), subjects=1, clips_per_class=1, fps=100,
                          image_size=(48, 48), seed=7)
    out = []
    for _, row in read_dataset("casme2", root).iterrows():
        numbers = [n for n in row["frame_numbers"] if row["onset"] <= n <= row["offset"]]
        out.append((load_clip(row), int(np.abs(np.asarray(numbers) - int(row["apex"])).argmin())))
    return out


def _tiny(name, shape):
    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape)
    flat = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(flat), name=name)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("exports")
    out = {}
    for name, (modality, shape, sampler) in CASES.items():
        model = _tiny(name, shape)
        path = export_saved_model(model, base / name, class_names=CLASSES, normalization=([MEAN], [STD]),
                                  modality=modality, sampler=sampler)
        out[name] = (model, path, tf.saved_model.load(str(path)))
    return out


def _keras_probs(model, frames, name, apex=None):
    modality, shape, sampler = CASES[name]
    x = input_from_frames(frames, modality, shape, apex=apex, sampler=sampler)
    return model.predict((x[None] - MEAN) / STD, verbose=0)[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_raw_frames_give_the_keras_models_labels(clips, exports, name):
    model, path, loaded = exports[name]
    modality, shape, sampler = CASES[name]
    assert {"serving_default", "serving_frames_apex", "serving_bytes", "serving_precomputed"} <= set(
        loaded.signatures)
    for frames, apex in clips:
        expected = _keras_probs(model, frames, name)
        got = loaded.signatures["serving_default"](frames=tf.constant(frames[None]))
        assert got["classes"].numpy()[0].decode() == CLASSES[int(expected.argmax())]
        np.testing.assert_allclose(got["probabilities"].numpy()[0], expected, atol=2e-3)
        assert got["scores"].numpy()[0] == pytest.approx(float(got["probabilities"].numpy()[0].max()))
        with_apex = loaded.signatures["serving_frames_apex"](frames=tf.constant(frames[None]),
                                                             apex=tf.constant([apex], tf.int32))
        np.testing.assert_allclose(with_apex["probabilities"].numpy()[0],
                                   _keras_probs(model, frames, name, apex=apex), atol=2e-3)
        # the saved graph's own input builder (the intermediate the signatures classify)
        x = loaded.preprocess(tf.constant(frames[None]), tf.constant([apex], tf.int32)).numpy()[0]
        reference = input_from_frames(frames, modality, shape, apex=apex, sampler=sampler)
        assert np.abs(x - reference).max() <= 1.0  # exact but for a shrink's rounding (test_preprocess.py)


def test_a_batch_of_clips_is_one_call(clips, exports):
    model, _, loaded = exports["tiny_di"]
    length = min(len(f) for f, _ in clips)
    batch = np.stack([f[:length] for f, _ in clips])
    got = loaded.signatures["serving_default"](frames=tf.constant(batch))
    labels = [CLASSES[int(_keras_probs(model, f, "tiny_di").argmax())] for f in batch]
    assert [c.decode() for c in got["classes"].numpy()] == labels
    assert got["probabilities"].shape == (len(batch), 3) and got["probabilities"].dtype == tf.float32


def test_jpeg_frames_signature(clips, exports):
    model, _, loaded = exports["tiny_di"]
    frames, _ = clips[0]
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
             for f in frames]
    # the reference decodes the same bytes with OpenCV, as the dataset readers do
    decoded = np.stack([cv2.cvtColor(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                        for j in jpegs])
    got = loaded.signatures["serving_bytes"](frames_bytes=tf.constant([jpegs]))
    expected = _keras_probs(model, decoded, "tiny_di")
    assert got["classes"].numpy()[0].decode() == CLASSES[int(expected.argmax())]
    np.testing.assert_allclose(got["probabilities"].numpy()[0], expected, atol=2e-3)


def _ops(path):
    """Every op type in saved_model.pb: the graph's nodes and those of each function in its library."""
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    ops = set()
    for graph in proto.meta_graphs:
        ops |= {node.op for node in graph.graph_def.node}
        for fn in graph.graph_def.library.function:
            ops |= {node.op for node in fn.node_def}
    return ops


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_graph_holds_only_standard_ops(exports, name):
    ops = _ops(exports[name][1])
    assert {"DecodeJpeg", "MatMul"} <= ops  # the listing reaches the functions' bodies
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
    unregistered = sorted(op for op in ops if op_def_registry.get(op) is None)
    assert not unregistered, f"custom ops: {unregistered}"


def test_flow_and_unknown_modalities_keep_the_precomputed_default(tmp_path):
    flow = export_saved_model(_tiny("tiny_flow", (16, 16, 3)), tmp_path / "flow", modality="flow")
    unknown = export_saved_model(_tiny("not_registered", (16, 16, 3)), tmp_path / "unknown")
    for path, why in ((flow, "no standard TensorFlow op"), (unknown, "modality is unknown")):
        meta = json.loads((path / "assets.extra" / "kerasmer.json").read_text())
        assert why in meta["note"] and "raw_frames" not in meta
        loaded = tf.saved_model.load(str(path))
        assert set(loaded.signatures) == {"serve", "serving_default", "serving_precomputed"}
        out = loaded.signatures["serving_default"](tf.zeros((2, 16, 16, 3)))
        # no class names: the top class's index as text (zeros in, equal scores, the first class)
        assert out["classes"].numpy().tolist() == [b"0", b"0"]
        assert not load_exported(path).raw_frames
    with pytest.raises(ValueError, match=r"modality 'clip' needs a fixed \(T, H, W, C\)"):
        export_saved_model(_tiny("tiny_bad", (16, 16, 3)), tmp_path / "bad", modality="clip")


def test_serving_graphs_add_biases_with_bias_add():
    """The exported signatures and load_served_model's call trace the model under inference_graph(), so a bf16
    layer keeps Keras' BiasAdd, which oneDNN fuses with its conv (training graphs broadcast instead)."""
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.GlobalAveragePooling2D()(Conv2D(4, 3, dtype="mixed_bfloat16")(inputs))
    # The head has no bias: the conv's is the only one in the graph.
    model = keras.Model(inputs, Dense(3, use_bias=False, activation="softmax", dtype="float32")(features))
    spec = tf.TensorSpec((None, 8, 8, 3), tf.float32)
    signatures, _ = serving_functions(model, spec, modality=None, sampler=None)
    assert "BiasAdd" in op_types(signatures[PRECOMPUTED], spec)
    call = _graph_call(model)
    traced = next(c.cell_contents for c in call.__closure__ if hasattr(c.cell_contents, "get_concrete_function"))
    assert "BiasAdd" in op_types(traced, tf.TensorSpec((1, 8, 8, 3), tf.float32))
    assert "BiasAdd" not in op_types(tf.function(lambda x: model(x, training=True)), spec)
