"""Training one fold with honest model selection, checkpoints and resume.

The test rows of a fold are touched exactly once, by the final ``predict``.
Training, validation loss, early stopping, the plateau scheduler, NaN checks
and the choice of epoch see only the training and validation subjects.

Each epoch is one ``model.fit(initial_epoch=e, epochs=e + 1)`` call on a
training dataset shuffled with a seed derived from (fold seed, epoch), so the
data order of epoch ``e`` does not depend on whether the process was restarted.
The validation-only selector (:class:`~kerasmer.training.callbacks.BestEpoch`)
and Keras' ``ReduceLROnPlateau`` are driven between epochs and checkpointed
with the model, so a resumed fold reproduces the uninterrupted one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np

import kerasmer
from kerasmer.evaluation import compute_metrics
from kerasmer.training.callbacks import BestEpoch
from kerasmer.training.recipes import Recipe, apply_kernel_init, make_optimizer
from kerasmer.training.resume import FoldCheckpoint
from kerasmer.training.results import FoldResult


class FoldFailed(RuntimeError):
    """A fold stopped (e.g. NaN loss); the run records it and continues with the other folds."""


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras' epoch progress bar, headed with the fold and the fold's real epoch count.

    Each epoch is its own ``fit`` call, so Keras' own header would read
    ``Epoch e/e``; this one reads ``fold 05 · epoch e/E``.
    """

    def __init__(self, fold_name: str, total_epochs: int):
        super().__init__()
        self.fold_name, self.total_epochs = fold_name, int(total_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose:
            print(f"\nfold {self.fold_name} · epoch {epoch + 1}/{self.total_epochs}", flush=True)


def epoch_seed(seed: int, epoch: int) -> int:
    """The data-order seed of ``epoch``: fixed per (fold seed, epoch), independent of restarts."""
    return int(seed) * 100_003 + int(epoch)


def _current_lr(optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _selector_state(sel: BestEpoch | None) -> dict | None:
    if sel is None:
        return None
    return {"best": sel.best, "best_epoch": sel.best_epoch, "wait": sel._wait}


def _plateau_state(p) -> dict | None:
    if p is None:
        return None
    return {"best": p.best, "wait": p.wait, "cooldown_counter": p.cooldown_counter}


INPUT_OPTIONS = ("apex", "face", "sampler", "flow", "cache_dir")
TRAIN_OPTIONS = ("augment", "balance")


def split_data_options(options: dict | None) -> tuple[dict, dict]:
    """Split ``data_options`` into those of every split and those of training batches only.

    Raises:
        ValueError: an option the data layer does not take (named).
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(INPUT_OPTIONS) - set(TRAIN_OPTIONS))
    if unknown:
        raise ValueError(f"data_options: unknown option(s) {unknown}; choose from "
                         f"{', '.join(INPUT_OPTIONS + TRAIN_OPTIONS)}")
    return ({k: v for k, v in options.items() if k in INPUT_OPTIONS},
            {k: v for k, v in options.items() if k in TRAIN_OPTIONS})


def train_fold(df, fold, *, model_name: str, class_names, recipe: Recipe, label_column: str = "emotion",
               input_shape=None, seed: int = 0, verbose: int = 0, model_overrides: dict | None = None,
               strategy=None, fold_dir=None, tensorboard_dir=None, init_from=None, freeze=(),
               callbacks=None, resume: bool = True, dataset_fn=None, data_options: dict | None = None, log=None):
    """Train one fold and predict its test subjects with the validation-chosen weights.

    Args:
        df: annotation table; ``label_column`` holds names in ``class_names``.
        fold: a :class:`~kerasmer.evaluation.protocols.Fold`.
        model_name: registry name.
        class_names: class names, index-aligned with the model output.
        recipe: the training recipe.
        label_column: label column of ``df``.
        input_shape: model input shape (default: the registry's).
        seed: seed of weights, data order and augmentation.
        verbose: Keras epoch progress (0, 1, 2).
        model_overrides: extra ``build_model`` options.
        strategy: a ``tf.distribute`` strategy (default: the current one).
        fold_dir: where checkpoints go (None: no checkpoints, no resume).
        tensorboard_dir: where TensorBoard scalars go (None: none).
        init_from: ``.keras`` / ``.weights.h5`` file to initialise weights from by layer name.
        freeze: layer-name patterns to freeze.
        callbacks: extra Keras callbacks for every ``fit`` call (they see training
            and validation data only).
        resume: continue from ``fold_dir``'s checkpoint if there is one.
        dataset_fn: replaces ``kerasmer.data.make_dataset`` (same signature).
        data_options: input options for the data layer: ``apex``, ``face``,
            ``sampler``, ``flow``, ``cache_dir`` (used for every split) and
            ``augment``, ``balance`` (training batches only).
        log: ``fn(str)`` for messages (default: print).

    Returns:
        ``(model, FoldResult)``.

    Raises:
        FoldFailed: the training loss became NaN or infinite.

    Example:
        >>> model, res = train_fold(df, folds[0], model_name="learnet", class_names=names,
        ...                         recipe=get_recipe("learnet", epochs=3))  # doctest: +SKIP
    """
    import tensorflow as tf

    from kerasmer.data import fit_normalization
    if dataset_fn is None:
        from kerasmer.data import make_dataset as dataset_fn
    log = log or print
    class_names = list(class_names)
    info = kerasmer.model_info(model_name)
    input_shape = tuple(input_shape or info.input_shape)
    train_df, val_df, test_df = (df.iloc[idx] for idx in (fold.train, fold.val, fold.test))
    t0 = time.perf_counter()
    keras.utils.set_random_seed(seed)
    input_opts, train_opts = split_data_options(data_options)
    norm = fit_normalization(train_df, modality=info.modality, input_shape=input_shape, **input_opts)
    common = dict(modality=info.modality, input_shape=input_shape, class_names=class_names,
                  label_column=label_column, batch_size=recipe.batch_size, normalization=norm, **input_opts)
    steps_per_epoch = max(1, math.ceil(len(train_df) / recipe.batch_size))
    epochs = recipe.resolve_epochs(steps_per_epoch)
    if recipe.iterations is not None:
        log(f"fold {fold.name}: {recipe.iterations} iterations (optimizer steps) -> {epochs} epochs x "
            f"{steps_per_epoch} steps = {epochs * steps_per_epoch} steps")
    strategy = strategy or tf.distribute.get_strategy()

    with strategy.scope():
        model = kerasmer.build_model(model_name, num_classes=len(class_names), input_shape=input_shape,
                                     **(model_overrides or {}))
        apply_kernel_init(model, recipe.kernel_init, seed=seed)
        transfer = _transfer(model, init_from, freeze, log) if (init_from or freeze) else None
        model.compile(optimizer=make_optimizer(recipe, steps_per_epoch=steps_per_epoch, epochs=epochs),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        model.optimizer.build(model.trainable_variables)

    has_val = len(val_df) > 0
    selector = BestEpoch(monitor="val_loss", mode="min", patience=recipe.early_stopping_patience) if has_val else None
    plateau = None
    if recipe.schedule == "plateau":
        # Plateaus are judged on validation loss, or training loss when there are no validation subjects.
        plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss" if has_val else "loss",
                                                    factor=recipe.plateau_factor, patience=recipe.plateau_patience,
                                                    min_lr=recipe.min_lr, verbose=0)
    for cb in (selector, plateau):
        if cb is not None:
            cb.set_model(model)
            cb.on_train_begin()

    history: dict = {}
    start, stopped = 0, False
    ckpt = FoldCheckpoint(Path(fold_dir) / "checkpoint") if fold_dir is not None else None
    if ckpt is not None and resume:
        restored = ckpt.restore(model)
        if restored is not None:
            state, best_weights = restored
            start, history, stopped = int(state["epoch"]), state["history"], bool(state.get("stopped"))
            if selector is not None and state.get("selector"):
                s = state["selector"]
                selector.best, selector.best_epoch, selector._wait = s["best"], s["best_epoch"], s["wait"]
                selector.best_weights = best_weights
            if plateau is not None and state.get("plateau"):
                p = state["plateau"]
                plateau.best, plateau.wait, plateau.cooldown_counter = p["best"], p["wait"], p["cooldown_counter"]
            log(f"fold {fold.name}: resuming after epoch {start} from {ckpt.directory}")
    elif ckpt is not None:
        ckpt.clear()

    val_ds = dataset_fn(val_df, training=False, seed=seed, **common) if has_val else None
    writer = tf.summary.create_file_writer(str(tensorboard_dir)) if tensorboard_dir is not None else None
    fit_callbacks = [keras.callbacks.TerminateOnNaN(), *(callbacks or [])]
    if verbose:
        fit_callbacks.append(EpochProgress(fold.name, epochs))
    try:
        for epoch in range(start, epochs if not stopped else start):
            # A fresh pipeline per epoch (decoded inputs are cached by the data layer), seeded by epoch.
            train_ds = dataset_fn(train_df, training=True, seed=epoch_seed(seed, epoch), cache=False, **common,
                                  **train_opts)
            lr = _current_lr(model.optimizer)  # the rate at the epoch's first step
            h = model.fit(train_ds, validation_data=val_ds, initial_epoch=epoch, epochs=epoch + 1,
                          verbose=verbose, shuffle=False, callbacks=fit_callbacks)
            logs = {k: float(v[-1]) for k, v in h.history.items()}
            logs["learning_rate"] = lr
            if not np.isfinite(logs.get("loss", np.nan)):
                raise FoldFailed(f"fold {fold.name}: training loss became {logs.get('loss')} in epoch {epoch + 1} "
                                 f"(learning rate {logs['learning_rate']:.3g}); stopping this fold. Try a lower "
                                 "learning rate or float32 precision.")
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            if writer is not None:
                _write_scalars(writer, logs, step=epoch + 1)
            if selector is not None:
                selector.on_epoch_end(epoch, logs)
            if plateau is not None:
                plateau.on_epoch_end(epoch, dict(logs))
            stopped = bool(selector is not None and model.stop_training)
            if ckpt is not None:
                state = {"history": history, "selector": _selector_state(selector),
                         "plateau": _plateau_state(plateau), "stopped": stopped}
                ckpt.save(model, epoch=epoch + 1, state=state,
                          best_weights=selector.best_weights if selector is not None else None)
            if stopped:
                break
    finally:
        if writer is not None:
            writer.close()

    epochs_run = len(history.get("loss", []))
    if selector is not None and selector.best_epoch is not None:
        selector.on_train_end()  # restores the best validation epoch's weights
        evaluated_epoch, selection = selector.best_epoch, "best val_loss (validation subjects only)"
    else:
        evaluated_epoch, selection = epochs_run, "last epoch (no validation subjects)"

    # The only use of the test subjects: one prediction with the selected weights.
    test_ds = dataset_fn(test_df, training=False, seed=seed, **common)
    probs = np.asarray(model.predict(test_ds, verbose=0), dtype="float32")
    y_true = np.array([class_names.index(v) for v in test_df[label_column]], dtype=int)
    y_pred = probs.argmax(axis=1)
    subjects = (lambda part: sorted(part["subject"].astype(str).unique()))
    result = FoldResult(
        name=fold.name, test_subjects=subjects(test_df), val_subjects=subjects(val_df),
        train_subjects=subjects(train_df), clips=test_df["clip"].astype(str).tolist(),
        clip_subjects=test_df["subject"].astype(str).tolist(), y_true=y_true, y_pred=y_pred, probabilities=probs,
        evaluated_epoch=int(evaluated_epoch), selection=selection, epochs_run=epochs_run, history=history,
        seconds=time.perf_counter() - t0, metrics=compute_metrics(y_true, y_pred, class_names),
        normalization=norm, epochs_planned=int(epochs), train_clips=_clip_keys(train_df),
        val_clips=_clip_keys(val_df), transfer=transfer, resumed_from_epoch=int(start),
    )
    return model, result


def _clip_keys(part) -> list:
    """``subject/clip`` ids (clip names repeat across subjects in CASME II)."""
    return (part["subject"].astype(str) + "/" + part["clip"].astype(str)).tolist()


def _write_scalars(writer, logs: dict, step: int) -> None:
    """TensorBoard scalars via core TensorFlow (``tf.summary.scalar`` needs the tensorboard package)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
                                       data_class=summary_pb2.DATA_CLASS_SCALAR)
    with writer.as_default():
        for k, v in logs.items():
            tf.summary.write(k, tf.constant(float(v), tf.float32), step=step, metadata=meta)
    writer.flush()


def _transfer(model, init_from, freeze, log) -> dict:
    """Apply ``--init-from`` and ``--freeze``; return what was matched and frozen."""
    from kerasmer.training.transfer import init_weights

    out = {}
    if init_from:
        report = init_weights(model, init_from)
        log(f"init-from {init_from}: {report.summary()}")
        out.update(init_from=str(init_from), matched=report.matched, unmatched_target=report.unmatched_target,
                   unmatched_source=report.unmatched_source, shape_mismatch=report.shape_mismatch)
    if freeze:
        from kerasmer.models.transfer import freeze_layers

        frozen = []
        for pattern in freeze:
            frozen += freeze_layers(model, pattern)
        log(f"froze {len(frozen)} layers matching {list(freeze)}")
        out["frozen"] = frozen
    return out
