"""TensorBoard scalars written with core TensorFlow (``tf.summary.scalar`` needs the tensorboard package)."""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

_SCALAR = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
                                      data_class=summary_pb2.DATA_CLASS_SCALAR)


def write_scalars(writer, logs: dict, step: int) -> None:
    """Write every value of ``logs`` as a TensorBoard scalar at ``step`` and flush.

    Args:
        writer: a ``tf.summary`` file writer.
        logs: ``{name: number}``.
        step: the step (kerasmer uses the 1-based epoch).
    """
    with writer.as_default():
        for k, v in logs.items():
            tf.summary.write(k, tf.constant(float(v), tf.float32), step=step, metadata=_SCALAR)
    writer.flush()
