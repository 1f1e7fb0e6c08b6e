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
from pathlib import Path


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


def run_directory(name: str, output_dir) -> Path:
    """Where this process writes a run: ``output_dir``, or a non-chief worker's own folder under it.

    Under ``multiworker`` every worker runs the same ``run`` (the collectives of one worker's ``fit`` pair with
    the others'), but only the chief (task ``chief``, or ``worker`` 0 when the cluster names no chief) writes the
    run directory. Each other worker writes into ``<output_dir>/workers/<index>/``: the run-directory lock
    (``core/lock.py``) keeps one process per directory, and a worker keeps its own checkpoints there so that a
    restart of all workers resumes every one of them from the same epoch.

    Args:
        name: the ``--strategy`` name.
        output_dir: the run's ``output_dir``.

    Returns:
        The directory this process runs into.

    Example:
        >>> os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
        ...                                       "task": {"type": "worker", "index": 1}})  # doctest: +SKIP
        >>> run_directory("multiworker", "runs/a")  # doctest: +SKIP
        PosixPath('runs/a/workers/1')
    """
    output_dir = Path(output_dir)
    if name != "multiworker":
        return output_dir
    try:
        cfg = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task_type, index = cfg["task"].get("type", "worker"), int(cfg["task"]["index"])
        has_chief = bool(cfg["cluster"].get("chief"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return output_dir  # get_strategy reports the bad TF_CONFIG, inside the run
    chief = task_type == "chief" or (task_type == "worker" and index == 0 and not has_chief)
    if chief:
        return output_dir
    return output_dir / "workers" / (str(index) if task_type == "worker" else f"{task_type}-{index}")


def fit_under(strategy, model) -> None:
    """Make Keras 3's ``fit``/``evaluate`` under a ``tf.distribute`` strategy train as on one device.

    Keras 3's TensorFlow trainer (3.15 here) builds a model's metrics before the first epoch from a real batch:

    1. under any strategy it draws that batch from the epoch's dataset and then restarts it, so a seeded
       ``shuffle(reshuffle_each_iteration=True)`` is read a second time and the epoch sees a *different*
       order than on one device. Only shapes and dtypes are needed, so Keras gets the dataset's
       ``element_spec`` instead and the epoch is the dataset's first pass, as without a strategy;
    2. under ``MultiWorkerMirroredStrategy`` it ``reduce``s that batch as a whole structure, which fails
       ("Attempt to convert a value (PerReplica:{...}) with an unsupported type"; keras-team/keras#20585),
       which (1) also avoids, and it averages each step's scalar logs with ``reduce("MEAN", v, axis=0)``
       ("Invalid reduction dimension 0 for input with 0 dimensions"): see :func:`_patch_scalar_mean`.

    Args:
        strategy: the run's ``tf.distribute`` strategy (or None: nothing to do).
        model: a compiled model built in ``strategy.scope()``; changed in place.

    Returns:
        None.

    Example:
        >>> fit_under(get_strategy("multiworker"), model)  # doctest: +SKIP
    """
    import tensorflow as tf

    if strategy is None or getattr(model, "_distribute_strategy", None) is None:
        return  # no strategy scope: Keras builds the model from its first traced step, reading no batch early
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _patch_scalar_mean()
    build = model._maybe_symbolic_build  # a private Keras method: the one that reads a batch

    def symbolic_build(iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            data_batch = iterator.data_adapter.get_tf_dataset().element_spec  # shapes and dtypes, no data read
        return build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build


def _patch_scalar_mean() -> None:
    """Bug (2) of :func:`fit_under`: Keras' step-output reduction, with scalar means over ``axis=None``."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer  # private: where the bug lives

    original = tf_trainer.reduce_per_replica
    if getattr(original, "kerasmer_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            def mean(v):
                # one replica per worker: a plain tensor (Keras' own comment on _multi_worker_concat)
                local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
                rank0 = tf.is_tensor(local) and local.shape.rank == 0
                return strategy.reduce("MEAN", v, axis=None) if rank0 else original(v, strategy, reduction)
            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica.kerasmer_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def plain_strategy(strategy) -> bool:
    """Whether ``strategy`` is none or TensorFlow's default one (one device, datasets used as given).

    Args:
        strategy: a ``tf.distribute`` strategy or None.

    Returns:
        True for None and the default strategy; False for ``mirrored``, ``multiworker`` and any other.

    Example:
        >>> plain_strategy(None)
        True
    """
    if strategy is None:
        return True
    from tensorflow.python.distribute import distribute_lib  # the default strategy's class is not public

    default = getattr(distribute_lib, "_DefaultDistributionStrategy", None)
    return default is not None and isinstance(strategy, default)


def direct_updates(optimizer) -> bool:
    """Apply ``optimizer``'s updates directly when no ``tf.distribute`` strategy is in use (a memory leak's fix).

    Keras 3.15's TensorFlow optimizer sends every variable's update through ``maybe_merge_call`` and
    ``strategy.extended.update``, even under the default strategy.  Traced into a training step (every ``fit``)
    that path keeps each trained model's variables and optimizer slots alive after the model is gone: about
    450 MB per fold for ``attention56`` at 64x64 (``gc.collect``, ``keras.backend.clear_session`` and
    ``malloc_trim`` free none of it; a traced step with a plain update does not leak).  The leaderboard's
    process grew to 22 GB after 34 folds and was killed by the kernel.  Under the default strategy that path
    computes ``update_step(grad, var, lr)`` for each variable, so this instance does exactly that; with a real
    strategy (``mirrored``, ``multiworker``) nothing changes.  ``tests/training/test_memory.py`` checks the
    weights are bit-identical and the memory flat.

    Args:
        optimizer: a built Keras optimizer (a ``LossScaleOptimizer``'s inner optimizer is the one changed).

    Returns:
        True when the instance was changed, False under a strategy (or for an optimizer without that path).

    Example:
        >>> direct_updates(model.optimizer)  # doctest: +SKIP
        True
    """
    import keras
    from tensorflow.python.distribute import distribute_lib  # the default strategy's class is not public

    inner = getattr(optimizer, "inner_optimizer", optimizer)
    default = getattr(distribute_lib, "_DefaultDistributionStrategy", None)
    strategy = getattr(inner, "_distribution_strategy", None)  # the strategy the optimizer was made under
    if default is None or not isinstance(strategy, default) or not hasattr(inner, "_backend_update_step"):
        return False

    def _backend_update_step(grads, trainable_variables, learning_rate):
        for grad, var in zip(grads, trainable_variables):
            inner.update_step(grad, var.value if isinstance(var, keras.Variable) else var, learning_rate)

    inner._backend_update_step = _backend_update_step  # this instance only: Keras itself is not patched
    return True
