"""``--strategy``: choosing a ``tf.distribute`` strategy.

* ``default``: TensorFlow's default strategy (one device);
* ``mirrored``: ``MirroredStrategy`` over the visible GPUs (or, when there are
  none, over the logical CPU devices, which is how the test runs it);
* ``multiworker``: ``MultiWorkerMirroredStrategy``, configured from the
  ``TF_CONFIG`` environment variable of each worker.

The batch size of a recipe is the *global* batch: each of N replicas gets 1/N.

Example:
    >>> strategy = get_strategy("mirrored")  # doctest: +SKIP
    >>> strategy.num_replicas_in_sync  # doctest: +SKIP
    2
"""

from __future__ import annotations

import json
import os


def get_strategy(name: str = "default"):
    """A ``tf.distribute.Strategy`` by name.

    Args:
        name: ``"default"``, ``"mirrored"`` or ``"multiworker"``.

    Returns:
        The strategy; build and compile models inside ``strategy.scope()``.

    Raises:
        ValueError: an unknown name, or ``multiworker`` without a valid ``TF_CONFIG``.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable "
                             "(cluster and task of this worker); see the tf.distribute docs")
        try:
            cfg = json.loads(raw)
            cfg["cluster"]["worker"], cfg["task"]["index"]  # noqa: B018 - presence check
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"strategy 'multiworker': TF_CONFIG is not valid ({err!r}); it needs "
                             "'cluster': {'worker': [...]} and 'task': {'type': 'worker', 'index': i}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; choose 'default', 'mirrored' or 'multiworker'")
