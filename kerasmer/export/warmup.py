"""TF Serving's warm-up file, written without ``tensorflow-serving-api``.

TF Serving runs the requests of ``<version>/assets.extra/tf_serving_warmup_requests`` when it loads a
version, before serving it, so the first client request does not pay for graph optimisation and memory
allocation ("SavedModel Warmup" in TF Serving's guide).  The file is a TFRecord of at most 1000
``tensorflow.serving.PredictionLog`` messages.  kerasmer does not depend on TF Serving's Python package,
so the messages are encoded here by hand in the protobuf wire format, the tensors by TensorFlow's own
``TensorProto``:

* ``PredictionLog``: field 6 ``predict_log`` (``PredictLog``);
* ``PredictLog``: field 1 ``request`` (``PredictRequest``);
* ``PredictRequest``: field 1 ``model_spec`` (``ModelSpec``), field 2 ``inputs``
  (``map<string, TensorProto>``: repeated entries with key 1, value 2);
* ``ModelSpec``: field 1 ``name``, field 3 ``signature_name``.

``tests/export/test_warmup.py`` parses the file with TF Serving's own message classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

WARMUP_FILE = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving reads no more
WARMUP_FRAMES = 5  # frames per warm-up clip for models that read every frame


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): key, length, bytes."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(model_name: str, signature_name: str, inputs: dict) -> bytes:
    """One serialised ``PredictionLog`` holding a ``PredictRequest`` for ``signature_name``.

    Args:
        model_name: ``ModelSpec.name`` (TF Serving's model name, the base path's folder name).
        signature_name: the signature the request calls.
        inputs: input name -> array (or ``tf.Tensor``).

    Returns:
        The message's bytes.

    Example:
        >>> msg = prediction_log("learnet", "serving_precomputed", {"x": np.zeros((1, 2), "float32")})
        >>> msg[:1]
        b'2'
    """
    spec = _field(1, model_name.encode()) + _field(3, signature_name.encode())
    entries = b"".join(_field(2, _field(1, name.encode()) + _field(2, tf.make_tensor_proto(value).SerializeToString()))
                       for name, value in inputs.items())
    request = _field(1, spec) + entries
    return _field(6, _field(1, request))


def _example_inputs(fn, input_shape: tuple) -> dict:
    """A small request for a signature, from its input specs: a grey-ish clip, its JPEGs, or a zero input."""
    rng = np.random.default_rng(0)
    frames_count = int(input_shape[0]) if len(input_shape) == 4 else WARMUP_FRAMES
    h, w = int(input_shape[-3]), int(input_shape[-2])
    clip = rng.integers(96, 160, size=(1, frames_count, h, w, 3), dtype=np.uint8)
    inputs = {}
    for spec in fn.input_signature:
        if spec.dtype == tf.uint8:
            inputs[spec.name] = clip
        elif spec.dtype == tf.int32:
            inputs[spec.name] = np.array([frames_count // 2], np.int32)
        elif spec.dtype == tf.string:
            inputs[spec.name] = np.array([[tf.io.encode_jpeg(f).numpy() for f in clip[0]]], dtype=object)
        else:
            inputs[spec.name] = np.zeros((1,) + tuple(input_shape), spec.dtype.as_numpy_dtype)
    return inputs


def write_warmup_requests(extra: str | Path, signatures: dict, input_spec: tf.TensorSpec, model_name: str) -> int:
    """Write ``extra/tf_serving_warmup_requests``: one batch-1 request per signature.

    Args:
        extra: the version's ``assets.extra`` folder (created if needed).
        signatures: signature name -> ``tf.function`` with an input signature.
        input_spec: the model input's spec (its shape sizes the warm-up clips).
        model_name: ``ModelSpec.name`` of the requests.

    Returns:
        The number of records written.

    Example:
        >>> write_warmup_requests(version / "assets.extra", sigs, spec, "learnet")  # doctest: +SKIP
        4
    """
    extra = Path(extra)
    extra.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(d) for d in input_spec.shape[1:])
    records = [prediction_log(model_name, name, _example_inputs(fn, shape)) for name, fn in sorted(signatures.items())]
    records = records[:MAX_WARMUP_RECORDS]
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
        for record in records:
            writer.write(record)
    return len(records)


__all__ = ["MAX_WARMUP_RECORDS", "WARMUP_FILE", "prediction_log", "write_warmup_requests"]
