"""docs/serving/: the REST request examples feed the exported signatures, the config files parse.

The requests are turned into tensors as TF Serving's REST API does: ``instances`` (row format) stacks one
value per instance, ``inputs`` (columnar format) names each input's whole batch, and ``{"b64": ...}`` values,
allowed for inputs whose name ends in ``_bytes``, are base64-decoded.
"""

import base64
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

import kerasmer
from kerasmer.export import export_saved_model

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "serving"
CLASSES = ["negative", "positive", "surprise"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = kerasmer.build_model("learnet", num_classes=3, input_shape=(32, 32, 3))
    path = export_saved_model(model, tmp_path_factory.mktemp("m") / "learnet", class_names=CLASSES)
    return tf.saved_model.load(str(path))


def _value(value, name):
    """JSON -> nested lists with base64 values decoded (TF Serving's rule for ``*_bytes`` inputs)."""
    if isinstance(value, dict):
        assert set(value) == {"b64"} and name.endswith("_bytes"), f"{name}: binary values need a *_bytes name"
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_value(v, name) for v in value]
    return value


def _tensors(request, fn):
    specs = fn.structured_input_signature[1]
    if "instances" in request:
        rows = request["instances"]
        if isinstance(rows[0], dict) and set(rows[0]) <= set(specs) and "b64" not in rows[0]:
            columns = {name: [row[name] for row in rows] for name in rows[0]}
        else:  # one unnamed input per instance
            (only,) = specs
            columns = {only: rows}
    else:
        inputs = request["inputs"]
        columns = inputs if isinstance(inputs, dict) else {next(iter(specs)): inputs}
    return {name: tf.constant(_value(v, name), dtype=specs[name].dtype) for name, v in columns.items()}


@pytest.mark.parametrize("example", ["request_default_instances", "request_default_inputs",
                                     "request_bytes_instances", "request_bytes_inputs"])
def test_request_examples_feed_the_signature(served, example):
    request = json.loads((EXAMPLES / f"{example}.json").read_text())
    fn = served.signatures[request["signature_name"]]
    out = fn(**_tensors(request, fn))
    response = json.loads((EXAMPLES / ("response_instances.json" if "instances" in example
                                       else "response_inputs.json")).read_text())
    if "predictions" in response:
        expected = {key: [row[key] for row in response["predictions"]] for key in response["predictions"][0]}
    else:
        expected = response["outputs"]
    assert set(expected) == set(out)
    for key, values in expected.items():
        assert np.shape(values) == tuple(out[key].shape), key
    assert out["classes"].numpy()[0].decode() in CLASSES
    # the response examples are this model's answer to the raw-frame request (an untrained model, seed 0)
    if example == "request_default_instances":
        np.testing.assert_allclose(out["probabilities"].numpy(), expected["probabilities"], atol=1e-4)
        assert [c.decode() for c in out["classes"].numpy()] == expected["classes"]


def test_config_examples_parse():
    config = text_format.Parse((EXAMPLES / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["learnet", "meranet18"]
    assert all(c.base_path == f"/models/{c.name}" for c in config.model_config_list.config)
    fields = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
              "allowed_batch_sizes", "pad_variable_length_inputs"}  # BatchingParameters (session_bundle_config)
    lines = [ln for ln in (EXAMPLES / "batching_parameters.txt").read_text().splitlines() if ln and ln[0] != "#"]
    assert {re.match(r"(\w+)", ln).group(1) for ln in lines} <= fields


def test_serving_md_shows_every_signature_and_example():
    text = (DOCS / "serving.md").read_text()
    for name in ("serving_default", "serving_frames_apex", "serving_bytes", "serving_precomputed",
                 "tf_serving_warmup_requests", "docker run", "models.config", "batching_parameters.txt",
                 "request_default_instances.json", "request_bytes_inputs.json", '"b64"', "flow"):
        assert name in text, name
