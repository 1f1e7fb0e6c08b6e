"""The serving signatures of an export: raw frames, JPEG bytes, and the precomputed model input.

============================ ====================================================================================
signature                    inputs
============================ ====================================================================================
``serving_default``          ``frames``: uint8 ``(batch, T, H, W, 3)``, face-cropped RGB clips onset..offset,
                             the apex taken as the middle frame ``T // 2`` (as ``input_from_frames`` does
                             when no apex is given).  For models whose input cannot be computed in-graph
                             (``flow``) it is the precomputed signature instead.
``serving_frames_apex``      ``frames`` as above and ``apex``: int32 ``(batch,)``, each clip's apex position
``serving_bytes``            ``frames_bytes``: string ``(batch, T)``, each a JPEG-encoded frame (TF Serving's
                             REST API decodes ``{"b64": ...}`` values of inputs named ``*_bytes``)
``serving_precomputed``      the model's float32 input ``(batch, *input_shape)``, un-normalised
============================ ====================================================================================

Every signature returns ``probabilities`` (float32 ``(batch, classes)``), ``classes`` (string ``(batch,)``, the
class name of the top score, or its index as text without class names) and ``scores`` (float32 ``(batch,)``).
The clips of one request share T, H and W (one tensor); send clips of other sizes in other requests.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kerasmer.export.preprocess import RAW_MODALITIES, frames_to_input
from kerasmer.layers.biased import inference_graph

PRECOMPUTED = "serving_precomputed"
RAW = "serving_default"
RAW_APEX = "serving_frames_apex"
BYTES = "serving_bytes"
FLOW_NOTE = ("no raw-frame signature for the 'flow' modality: its input is OpenCV's Farneback/DIS optical flow "
             "(u, v, strain), which has no standard TensorFlow op, and a TF Serving graph holds only standard "
             "ops; serving_default takes the precomputed flow input, computed by the client "
             "(kerasmer.data.pipeline.inputs.input_from_frames)")
UNKNOWN_NOTE = ("no raw-frame signature: the model's modality is unknown (not a registered model name); "
                "pass modality= to export_saved_model")


def _outputs(probabilities, class_names):
    """``probabilities``, ``classes`` (the top class's name) and ``scores`` (its probability)."""
    probabilities = tf.cast(probabilities, tf.float32)
    top = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    if class_names:
        names = tf.gather(tf.constant(list(class_names)), top)
    else:
        names = tf.strings.as_string(top)
    return {"probabilities": probabilities, "classes": names, "scores": tf.reduce_max(probabilities, axis=-1)}


def serving_functions(model, input_spec: tf.TensorSpec, *, modality: str | None, sampler: str | None,
                      normalization=None, class_names=None) -> tuple[dict, object]:
    """The ``tf.function`` of each signature, and the in-graph preprocessing (for tests), of one model.

    Args:
        model: the single-input Keras model, or any callable ``model(x, training=False) -> probabilities``
            (an export passes :class:`kerasmer.export.packing.PackedModel`).
        input_spec: its float32 input spec with a ``None`` batch axis.
        modality: ``"dynamic_image"``, ``"frame"``, ``"clip"`` get raw-frame signatures; others do not.
        sampler: the clip sampler (clip models).
        normalization: ``None`` or ``(mean, std)`` applied in-graph before the model.
        class_names: the names ``classes`` returns, or ``None``.

    Returns:
        ``(signatures, preprocess)``: name -> ``tf.function`` with its input signature, and the batch
        preprocessing ``tf.function(frames, apex) -> model input`` (``None`` without raw-frame signatures).

    Example:
        >>> sigs, pre = serving_functions(model, spec, modality="dynamic_image", sampler=None)  # doctest: +SKIP
        >>> sorted(sigs)  # doctest: +SKIP
        ['serving_bytes', 'serving_default', 'serving_frames_apex', 'serving_precomputed']
    """
    if normalization is not None:
        mean = tf.constant(np.asarray(normalization[0], dtype="float32"))
        std = tf.constant(np.asarray(normalization[1], dtype="float32"))

    @tf.function(input_signature=[input_spec], autograph=False)
    def precomputed(x):
        if normalization is not None:
            x = (x - mean) / std
        with inference_graph():  # a serving graph takes no gradients: biases keep Keras' fusable BiasAdd
            return _outputs(model(x, training=False), class_names)

    if modality not in RAW_MODALITIES:
        return {PRECOMPUTED: precomputed, RAW: precomputed}, None
    shape = tuple(int(d) for d in input_spec.shape[1:])
    preprocess = _batch_preprocess(modality, shape, sampler)
    # The raw-frame signatures call ``precomputed`` (its input signature is fixed): the model is traced and
    # stored once, not once per signature, which keeps big models' exports quick and saved_model.pb small.
    return _raw_signatures(preprocess, precomputed) | {PRECOMPUTED: precomputed}, preprocess


def _batch_preprocess(modality: str, shape: tuple, sampler: str | None):
    """``tf.function(frames (B, T, H, W, 3) uint8, apex (B,) int32) -> (B, *shape) float32``."""

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.uint8),
                                  tf.TensorSpec([None], tf.int32)], autograph=False)
    def preprocess(frames, apex):
        one = lambda args: frames_to_input(args[0], args[1], modality=modality, input_shape=shape,  # noqa: E731
                                           sampler=sampler)
        return tf.map_fn(one, (frames, apex), fn_output_signature=tf.TensorSpec(shape, tf.float32))

    return preprocess


def _raw_signatures(preprocess, classify) -> dict:
    """``serving_default`` (middle apex), ``serving_frames_apex`` and ``serving_bytes`` (JPEG frames)."""
    frames_spec = tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames")

    def middle(frames):
        dims = tf.shape(frames)
        return tf.fill([dims[0]], dims[1] // 2)  # the apex when none is known: the middle frame, as training

    @tf.function(input_signature=[frames_spec], autograph=False)
    def raw(frames):
        return classify(preprocess(frames, middle(frames)))

    @tf.function(input_signature=[frames_spec, tf.TensorSpec([None], tf.int32, name="apex")], autograph=False)
    def raw_apex(frames, apex):
        return classify(preprocess(frames, apex))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="frames_bytes")], autograph=False)
    def from_bytes(frames_bytes):
        frames = decode_frames(frames_bytes)
        return classify(preprocess(frames, middle(frames)))

    return {RAW: raw, RAW_APEX: raw_apex, BYTES: from_bytes}


def decode_frames(frames_bytes):
    """JPEG strings ``(B, T)`` -> uint8 ``(B, T, H, W, 3)`` RGB; every frame of a request has one size.

    Example:
        >>> jpeg = tf.io.encode_jpeg(tf.zeros((8, 8, 3), tf.uint8))
        >>> decode_frames(tf.reshape(tf.stack([jpeg, jpeg]), (1, 2))).shape.as_list()
        [1, 2, 8, 8, 3]
    """
    dims = tf.shape(frames_bytes)
    flat = tf.reshape(frames_bytes, [-1])
    # OpenCV's decoder (libjpeg-turbo, integer IDCT) is what training read frames with: ask for the same IDCT.
    decoded = tf.map_fn(lambda s: tf.io.decode_jpeg(s, channels=3, dct_method="INTEGER_ACCURATE"), flat,
                        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
    size = tf.shape(decoded)[1:]
    return tf.reshape(decoded, tf.concat([dims, size], 0))


def signature_table(signatures: dict, input_spec: tf.TensorSpec) -> dict:
    """JSON description of each signature's inputs (name, dtype, shape) for ``kerasmer.json``.

    Example:
        >>> signature_table(sigs, spec)["serving_bytes"]  # doctest: +SKIP
        {'inputs': {'frames_bytes': {'dtype': 'string', 'shape': [-1, -1]}}, 'outputs': [...]}
    """
    table = {}
    for name, fn in signatures.items():
        specs = fn.input_signature
        inputs = {(s.name or input_spec.name): {"dtype": s.dtype.name, "shape": [-1 if d is None else int(d)
                                                                                for d in s.shape.as_list()]}
                  for s in specs}
        table[name] = {"inputs": inputs, "outputs": ["probabilities", "classes", "scores"]}
    return table


__all__ = ["BYTES", "FLOW_NOTE", "PRECOMPUTED", "RAW", "RAW_APEX", "decode_frames", "serving_functions",
           "signature_table"]
