"""The warm-up file, hand-encoded by kerasmer, read back with TF Serving's own message classes.

CI installs ``tensorflow-serving-api`` with ``--no-deps`` for this test only (.ci/run); kerasmer never imports it.
"""

import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import kerasmer

from kerasmer.export import export_saved_model
from kerasmer.export.warmup import MAX_WARMUP_RECORDS, WARMUP_FILE, prediction_log


def _records(path):
    logs = []
    for raw in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(raw.numpy())
        logs.append(log)
    return logs


def _tiny(name, shape):
    keras.utils.set_random_seed(2)
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)), name=name)


def test_hand_encoded_message_equals_tf_servings():
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    mine = prediction_log("m", "serving_precomputed", {"x": x, "apex": np.array([1], np.int32)})
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.model_spec.name = "m"
    log.predict_log.request.model_spec.signature_name = "serving_precomputed"
    log.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    log.predict_log.request.inputs["apex"].CopyFrom(tf.make_tensor_proto(np.array([1], np.int32)))
    parsed = prediction_log_pb2.PredictionLog()
    parsed.ParseFromString(mine)
    assert parsed == log


def test_export_writes_one_runnable_request_per_signature(tmp_path):
    # kerasmer writes the file without TF Serving's package: no module of it imports tensorflow_serving
    sources = Path(kerasmer.__file__).parent.rglob("*.py")
    assert not [p for p in sources if re.search(r"^\s*(from|import) tensorflow_serving", p.read_text(), re.M)]
    path = export_saved_model(_tiny("tiny_clip", (4, 12, 12, 1)), tmp_path / "tiny", modality="clip",
                              sampler="centered", class_names=["a", "b", "c"])
    logs = _records(path / "assets.extra" / WARMUP_FILE)
    assert 0 < len(logs) <= MAX_WARMUP_RECORDS
    requests = {log.predict_log.request.model_spec.signature_name: log.predict_log.request for log in logs}
    assert set(requests) == {"serving_default", "serving_frames_apex", "serving_bytes", "serving_precomputed"}
    assert {r.model_spec.name for r in requests.values()} == {"tiny"}
    loaded = tf.saved_model.load(str(path))
    for name, request in requests.items():
        inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
        fn = loaded.signatures[name]
        assert set(inputs) == set(fn.structured_input_signature[1])
        out = fn(**{key: tf.constant(value) for key, value in inputs.items()})
        assert out["probabilities"].shape == (1, 3) and out["classes"].numpy()[0] in (b"a", b"b", b"c")
    frames = tf.make_ndarray(requests["serving_default"].inputs["frames"])
    assert frames.dtype == np.uint8 and frames.shape == (1, 4, 12, 12, 3)  # a clip of the model's T frames


def test_flow_export_warms_its_precomputed_default(tmp_path):
    path = export_saved_model(_tiny("tiny_flow", (8, 8, 3)), tmp_path / "flow", modality="flow")
    logs = _records(path / "assets.extra" / WARMUP_FILE)
    names = sorted(log.predict_log.request.model_spec.signature_name for log in logs)
    assert names == ["serving_default", "serving_precomputed"]
    (x,) = [tf.make_ndarray(value) for value in logs[0].predict_log.request.inputs.values()]
    assert x.dtype == np.float32 and x.shape == (1, 8, 8, 3)
    no_warmup = export_saved_model(_tiny("tiny_flow", (8, 8, 3)), tmp_path / "flow", warmup=False)
    assert not (no_warmup / "assets.extra" / WARMUP_FILE).exists()
