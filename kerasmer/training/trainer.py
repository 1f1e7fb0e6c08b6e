"""The fold trainer: one fold trained with honest model selection, in steps that can be overridden or hooked.

The test rows of a fold are touched exactly once, by the final ``predict``.
Training, validation loss, early stopping, the plateau scheduler, NaN checks
and the choice of epoch see only the training and validation subjects.

:meth:`FoldTrainer.train` runs these steps in order, each a method a subclass
may override (as Keras' ``Model.train_step``) and each followed by the hooks'
matching call (:class:`TrainerHook`), so a new feature is one hook or one
overridden step, not one more parameter:

1. :meth:`~FoldTrainer.prepare`: split the fold's rows, fit normalisation on the training rows, plan the epochs;
2. :meth:`~FoldTrainer.build`: build, initialise and compile the model (hook: ``on_model_built``);
3. :meth:`~FoldTrainer.make_selection`: the validation-only epoch selector and plateau scheduler;
4. :meth:`~FoldTrainer.restore`: continue from the fold's checkpoint, if any;
5. :meth:`~FoldTrainer.fit`: one ``fit`` call per epoch (:meth:`~FoldTrainer.fit_epoch`), then
   :meth:`~FoldTrainer.end_epoch` records, selects and checkpoints (hook: ``on_epoch_end``);
6. :meth:`~FoldTrainer.select`: restore the best validation epoch's weights;
7. :meth:`~FoldTrainer.predict`: the one use of the test subjects (hook: ``on_fold_end``).

Each epoch is one ``model.fit(initial_epoch=e, epochs=e + 1)`` call on the
training batches shuffled and augmented with a seed derived from (fold seed, epoch),
so the data of epoch ``e`` does not depend on whether the process was restarted.
Without a ``tf.distribute`` strategy those batches come from one iterator across
epochs (:class:`~kerasmer.training.feed.EpochFeed`; the same batches as a dataset
per epoch, without an iterator's set-up cost at every epoch).
The selector and Keras' ``ReduceLROnPlateau`` are driven between epochs and
checkpointed with the model, so a resumed fold reproduces the uninterrupted one.

Example:
    >>> spec = TrainSpec(model="learnet", class_names=["negative", "positive", "surprise"],
    ...                  recipe=get_recipe("learnet", epochs=3))  # doctest: +SKIP
    >>> model, result = FoldTrainer(spec).train(df, folds[0], seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

# Looked up as kerasmer.data.<name> at call time, so an audit (the honest-selection test) can wrap them.
from kerasmer import data as kdata
from kerasmer.data.pipeline.tfdata import decode_errors_raised, epoch_draws
from kerasmer.evaluation.metrics import compute_metrics
from kerasmer.evaluation.protocols import Fold
from kerasmer.evaluation.results import FoldResult
from kerasmer.models import build_model, model_info
from kerasmer.models.transfer import freeze_initialised, freeze_layers, init_weights
from kerasmer.training.callbacks import BestEpoch, EpochProgress, plateau_state, restore_plateau
from kerasmer.training.distribute import direct_updates, fit_under, plain_strategy
from kerasmer.training.feed import EpochFeed, reader, single_pass
from kerasmer.training.recipes import Recipe, apply_kernel_init, make_optimizer
from kerasmer.training.resume import FoldCheckpoint
from kerasmer.training.summaries import write_scalars

INPUT_OPTIONS = ("apex", "face", "sampler", "flow", "cache_dir")
TRAIN_OPTIONS = ("augment", "balance")


class FoldFailed(RuntimeError):
    """A fold stopped (e.g. NaN loss); the run records it and continues with the other folds."""


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


# A fold diverged when its mean training loss exceeds DIVERGENCE_FACTOR x max(first epoch's loss, ln(classes)), or
# DIVERGENCE_ABSOLUTE x ln(classes) (chance-level cross-entropy is ln(classes)); docs/training.md gives the reasons.
DIVERGENCE_FACTOR = 100.0
DIVERGENCE_ABSOLUTE = 1000.0


def divergence_bound(num_classes: int, first_loss: float) -> float:
    """The largest training loss a fold may report before it counts as diverged.

    Args:
        num_classes: the model's classes (chance-level cross-entropy is ``ln(num_classes)``).
        first_loss: the fold's first epoch's training loss.

    Returns:
        ``min(DIVERGENCE_ABSOLUTE * ln(C), DIVERGENCE_FACTOR * max(first_loss, ln(C)))``.

    Example:
        >>> round(divergence_bound(3, 1.2), 1)
        120.0
    """
    chance = math.log(max(int(num_classes), 2))
    return min(DIVERGENCE_ABSOLUTE * chance, DIVERGENCE_FACTOR * max(float(first_loss), chance))


def epoch_seed(seed: int, epoch: int) -> int:
    """The data-order seed of ``epoch``: fixed per (fold seed, epoch), independent of restarts."""
    return int(seed) * 100_003 + int(epoch)


@dataclasses.dataclass
class TrainSpec:
    """What every fold of a run is trained with (the fold's own rows and seed come to :meth:`FoldTrainer.train`).

    Attributes:
        model: registry name; its spec (``kerasmer.model_info(model)``) gives the
            modality, input shape, clip sampler and augmentation.
        class_names: class names, index-aligned with the model output.
        recipe: the training recipe.
        label_column: the label column of the annotation table.
        input_shape: model input shape (None: the registry's).
        model_overrides: extra ``build_model`` options.
        data_options: ``apex``, ``face``, ``sampler``, ``flow``, ``cache_dir``
            (every split) and ``augment``, ``balance`` (training batches only);
            they override the recipe's ``augment``/``balance``, which override the model spec's.
        init_from: ``.keras`` / ``.weights.h5`` file to initialise weights from by layer name.
        freeze: layer-name patterns to freeze.
        verbose: Keras epoch progress (0, 1, 2).
        checkpoint_every: seconds between a fold's checkpoints (0: every epoch; ``RunConfig.checkpoint_every``).
    """

    model: str
    class_names: list
    recipe: Recipe
    label_column: str = "emotion"
    input_shape: tuple | None = None
    model_overrides: dict = dataclasses.field(default_factory=dict)
    data_options: dict = dataclasses.field(default_factory=dict)
    init_from: str | None = None
    freeze: tuple = ()
    verbose: int = 0
    checkpoint_every: float = 0.0

    def pipeline_options(self) -> tuple[dict, dict]:
        """``(every_split, train_only)`` keyword options for ``kerasmer.data``, from the model spec and data_options.

        Returns:
            Options for ``fit_normalization`` / ``make_dataset`` of every split
            (modality, input_shape, sampler, apex, face, flow, cache_dir), and the
            extra ones of training batches (augment, balance).
        """
        spec = dict(model_info(self.model).input_options(self.input_shape))
        spec_augment = spec.pop("augment", None)
        every, train = split_data_options(self.data_options)
        # precedence: the run's data_options, then the recipe's augmentation/resampling, then the model spec's
        for key, value in (("augment", self.recipe.augment), ("balance", self.recipe.balance),
                           ("augment", spec_augment)):
            if value is not None:
                train.setdefault(key, value)
        return {**spec, **every}, train


@dataclasses.dataclass
class FoldState:
    """Everything one fold's steps share; hooks may read and change it."""

    df: pd.DataFrame
    fold: Fold
    seed: int
    fold_dir: Path | None = None
    tensorboard_dir: Path | None = None
    resume: bool = True
    parts: dict = dataclasses.field(default_factory=dict)  # "train" / "val" / "test" -> rows
    normalization: tuple | None = None
    options: dict = dataclasses.field(default_factory=dict)  # make_dataset options of every split
    pipelines: dict = dataclasses.field(default_factory=dict)  # part -> make_dataset's reuse dict
    train_options: dict = dataclasses.field(default_factory=dict)
    steps_per_epoch: int = 1
    epochs: int = 1
    model: keras.Model | None = None
    transfer: dict | None = None
    selector: BestEpoch | None = None
    plateau: keras.callbacks.Callback | None = None
    checkpoint: FoldCheckpoint | None = None
    feed: EpochFeed | None = None  # the training batches' iterator across epochs (FoldTrainer.epoch_batches)
    history: dict = dataclasses.field(default_factory=dict)
    start_epoch: int = 0
    stopped: bool = False
    evaluated_epoch: int = 0
    selection: str = ""
    started: float = dataclasses.field(default_factory=time.perf_counter)


class TrainerHook:
    """Extends the fold trainer's steps; override the calls you need (each gets the trainer and the fold state)."""

    def on_fold_begin(self, trainer: "FoldTrainer", state: FoldState) -> None:
        """After :meth:`FoldTrainer.prepare`: parts, normalisation and the epoch plan are set."""

    def on_model_built(self, trainer: "FoldTrainer", state: FoldState) -> None:
        """After the model is built, initialised and compiled."""

    def on_epoch_end(self, trainer: "FoldTrainer", state: FoldState, epoch: int, logs: dict) -> None:
        """After epoch ``epoch`` (0-based) was recorded, selected on and checkpointed."""

    def on_fold_end(self, trainer: "FoldTrainer", state: FoldState, result: FoldResult) -> None:
        """After the test subjects were predicted."""


class KeepModel(TrainerHook):
    """Keeps the last fold's trained model and result (the quickstart exports it).

    Example:
        >>> keep = KeepModel()
        >>> run(config, hooks=[keep]); keep.model.summary()  # doctest: +SKIP
    """

    def __init__(self):
        self.model, self.result = None, None

    def on_fold_end(self, trainer, state, result):
        self.model, self.result = state.model, result


class SaveFoldModels(TrainerHook):
    """Saves each fold's selected model as ``<fold_dir>/model.keras``, where ``kerasmer explain`` and
    ``kerasmer predict`` find it (``kerasmer train --save-models``).

    A run keeps no model by default: LOSO on CASME II has 26 folds, and a fold model can be hundreds of MB.
    The file is written beside its target and renamed into place, so a reader never sees half a model.

    Example:
        >>> run(config, hooks=[SaveFoldModels()])  # doctest: +SKIP
    """

    FILE = "model.keras"

    def on_fold_end(self, trainer, state, result):
        if state.fold_dir is None:
            return
        target = Path(state.fold_dir) / self.FILE
        target.parent.mkdir(parents=True, exist_ok=True)  # no checkpoint may have made it (checkpoint_every)
        tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")  # .keras: Keras checks the suffix
        state.model.save(tmp)
        os.replace(tmp, target)


class FoldTrainer:
    """Trains one fold at a time with honest, validation-only model selection.

    Args:
        spec: the :class:`TrainSpec` every fold shares.
        hooks: :class:`TrainerHook` objects, called after the steps they name.
        callbacks: extra Keras callbacks for every ``fit`` call (they see
            training and validation data only).
        strategy: a ``tf.distribute`` strategy (default: the current one).
        log: ``fn(str)`` for messages (default: print).

    Example:
        >>> trainer = FoldTrainer(TrainSpec("learnet", names, get_recipe("learnet", epochs=3)))  # doctest: +SKIP
        >>> model, result = trainer.train(df, fold, seed=0, fold_dir="runs/a/folds/01")  # doctest: +SKIP
    """

    def __init__(self, spec: TrainSpec, *, hooks=(), callbacks=(), strategy=None, log=None):
        self.spec = spec
        self.hooks = list(hooks)
        self.callbacks = list(callbacks)
        self.strategy = strategy
        self.log = log or print

    def _call_hooks(self, event: str, *args) -> None:
        for hook in self.hooks:
            getattr(hook, event)(self, *args)

    def train(self, df: pd.DataFrame, fold: Fold, *, seed: int = 0, fold_dir=None, tensorboard_dir=None,
              resume: bool = True) -> tuple[keras.Model, FoldResult]:
        """Train ``fold`` and predict its test subjects with the validation-chosen weights.

        Args:
            df: annotation table; the spec's ``label_column`` holds names in ``class_names``.
            fold: a :class:`~kerasmer.evaluation.protocols.Fold`.
            seed: seed of weights, data order and augmentation.
            fold_dir: where checkpoints go (None: no checkpoints, no resume).
            tensorboard_dir: where TensorBoard scalars go (None: none).
            resume: continue from ``fold_dir``'s checkpoint if there is one.

        Returns:
            ``(model, FoldResult)``.

        Raises:
            FoldFailed: the training loss became NaN or infinite, or a frame could not be decoded
                (the kerasmer error naming the frame and the clip is in the message).
        """
        state = FoldState(df=df, fold=fold, seed=int(seed), resume=resume,
                          fold_dir=Path(fold_dir) if fold_dir is not None else None,
                          tensorboard_dir=Path(tensorboard_dir) if tensorboard_dir is not None else None)
        keras.utils.set_random_seed(state.seed)
        try:
            self.prepare(state)
            self._call_hooks("on_fold_begin", state)
            self.build(state)
            self._call_hooks("on_model_built", state)
            self.make_selection(state)
            self.restore(state)
            self.fit(state)
            self.select(state)
            result = self.predict(state)
        except kdata.AnnotationError as err:  # a damaged frame met while training: this fold fails, cleanly
            raise FoldFailed(f"fold {fold.name}: {err}") from err
        self._call_hooks("on_fold_end", state, result)
        return state.model, result

    # ------------------------------------------------------------------ steps

    def prepare(self, state: FoldState) -> None:
        """Split the fold's rows, fit normalisation on the training rows only, plan the epochs."""
        df, fold, recipe = state.df, state.fold, self.spec.recipe
        state.parts = {name: df.iloc[idx] for name, idx in (("train", fold.train), ("val", fold.val),
                                                            ("test", fold.test))}
        state.options, state.train_options = self.spec.pipeline_options()
        state.normalization = kdata.fit_normalization(state.parts["train"], **state.options)
        # an oversampled epoch ("oversample": classes x largest class) is longer than the training set
        draws = epoch_draws(state.parts["train"][self.spec.label_column].value_counts().tolist(),
                            state.train_options.get("balance", False))
        state.steps_per_epoch = max(1, math.ceil(draws / recipe.batch_size))
        state.epochs = recipe.resolve_epochs(state.steps_per_epoch)
        if recipe.iterations is not None:
            self.log(f"fold {fold.name}: {recipe.iterations} iterations (optimizer steps) -> {state.epochs} epochs "
                     f"x {state.steps_per_epoch} steps = {state.epochs * state.steps_per_epoch} steps")

    def build(self, state: FoldState) -> None:
        """Build, initialise (recipe init, ``init_from``, ``freeze``) and compile the model."""
        spec, recipe = self.spec, self.spec.recipe
        strategy = self.strategy or tf.distribute.get_strategy()
        with strategy.scope():
            model = build_model(spec.model, num_classes=len(spec.class_names),
                                         input_shape=state.options["input_shape"], **(spec.model_overrides or {}))
            apply_kernel_init(model, recipe.kernel_init, seed=state.seed)
            state.transfer = self.transfer(model) if (spec.init_from or spec.freeze) else None
            model.compile(optimizer=make_optimizer(recipe, steps_per_epoch=state.steps_per_epoch,
                                                   epochs=state.epochs),
                          loss="categorical_crossentropy", metrics=["accuracy"])
            model.optimizer.build(model.trainable_variables)
        direct_updates(model.optimizer)  # without a strategy: Keras' update path leaks each fold's model
        fit_under(strategy, model)  # Keras 3 under a strategy: same data order, multiworker fixes
        state.model = model

    def transfer(self, model: keras.Model) -> dict:
        """Apply ``init_from`` and ``freeze``; return what was matched and frozen."""
        out = {}
        if self.spec.init_from:
            report = init_weights(model, self.spec.init_from)
            self.log(f"init-from {self.spec.init_from}: {report.summary()}")
            out.update(init_from=str(self.spec.init_from), matched=report.matched,
                       unmatched_target=report.unmatched_target, unmatched_source=report.unmatched_source,
                       shape_mismatch=report.shape_mismatch)
            if self.spec.recipe.freeze_pretrained:
                out["freeze_pretrained"] = self.freeze_pretrained(model, report.matched)
        if self.spec.freeze:
            frozen = []
            for pattern in self.spec.freeze:
                frozen += freeze_layers(model, pattern)
            self.log(f"froze {len(frozen)} layers matching {list(self.spec.freeze)}")
            out["frozen"] = frozen
        return out

    def freeze_pretrained(self, model: keras.Model, matched) -> dict:
        """Freeze the recipe's ``freeze_pretrained`` groups that ``init_from`` initialised whole; log it.

        Returns:
            The record kept in the fold's ``transfer`` (and so in the report): the
            recipe, the frozen patterns and layers, the groups kept trainable and why.
        """
        recipe = self.spec.recipe
        done = freeze_initialised(model, recipe.freeze_pretrained, matched)
        if done["patterns"]:
            self.log(f"recipe {recipe.name}: froze {len(done['frozen'])} layers of {done['patterns']}, initialised "
                     f"by --init-from, as {recipe.paper} froze its pretrained parts (--set freeze_pretrained=[] "
                     "trains them)")
        for pattern, why in done["kept"].items():
            self.log(f"recipe {recipe.name}: {pattern} stays trainable: {why}")
        return {"recipe": recipe.name, **done}

    def make_selection(self, state: FoldState) -> None:
        """The validation-only epoch selector and, for plateau recipes, the learning-rate scheduler."""
        recipe, has_val = self.spec.recipe, len(state.parts["val"]) > 0
        if has_val:
            state.selector = BestEpoch(monitor="val_loss", mode="min", patience=recipe.early_stopping_patience)
        if recipe.schedule == "plateau":
            # Plateaus are judged on validation loss, or training loss when there are no validation subjects.
            state.plateau = keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss" if has_val else "loss", factor=recipe.plateau_factor,
                patience=recipe.plateau_patience, min_lr=recipe.min_lr, verbose=0)
        for cb in (state.selector, state.plateau):
            if cb is not None:
                cb.set_model(state.model)
                cb.on_train_begin()

    def restore(self, state: FoldState) -> None:
        """Continue from the fold's checkpoint (``resume``), or clear a stale one."""
        if state.fold_dir is None:
            return
        state.checkpoint = FoldCheckpoint(state.fold_dir / "checkpoint", every=self.spec.checkpoint_every)
        if not state.resume:
            state.checkpoint.clear()
            return
        restored = state.checkpoint.restore(state.model)
        if restored is None:
            return
        saved, best_weights = restored
        state.start_epoch, state.history = int(saved["epoch"]), saved["history"]
        state.stopped = bool(saved.get("stopped"))
        if state.selector is not None and saved.get("selector"):
            state.selector.set_state(saved["selector"], best_weights)
        restore_plateau(state.plateau, saved.get("plateau"))
        self.log(f"fold {state.fold.name}: resuming after epoch {state.start_epoch} from "
                 f"{state.checkpoint.directory}")

    def make_dataset(self, state: FoldState, part: str, *, training: bool, seed):
        """The ``tf.data`` batches of one part (``"train"``, ``"val"``, ``"test"``), normalised with the fold's fit;
        ``seed`` an int, or a list for several epochs' batches in turn (``kerasmer.data.make_dataset``)."""
        options = dict(state.options, class_names=list(self.spec.class_names), label_column=self.spec.label_column,
                       batch_size=self.spec.recipe.batch_size, normalization=state.normalization)
        if training:
            # Seeded by epoch (``seed`` one epoch's, or a list: EpochFeed's chunk of epochs); the fold's inputs stay
            # cached (tf.data ``.cache()``) and its augmentation traced in ``state.pipelines``, so a new dataset
            # only draws its epochs' orders and transforms.
            options.update(state.train_options, reuse=state.pipelines.setdefault(part, {}))
        return kdata.make_dataset(state.parts[part], training=training, seed=seed, **options)

    def uses_feed(self, state: FoldState) -> bool:
        """Whether the epochs read one iterator across ``fit`` calls (:mod:`kerasmer.training.feed`): yes without a
        ``tf.distribute`` strategy; under one (which may rewrite the datasets it is given) each epoch gets its own."""
        return plain_strategy(self.strategy)

    def epoch_batches(self, state: FoldState, epoch: int) -> tuple:
        """``(dataset, steps)``: epoch ``epoch``'s training batches, shuffled and augmented by its own seed.

        The same batches either way: from the fold's :class:`~kerasmer.training.feed.EpochFeed` (one iterator for
        up to 32 epochs), or from a dataset built for the epoch (:func:`single_pass`) when :meth:`uses_feed` says no.
        """
        if not self.uses_feed(state):
            return single_pass(self.make_dataset(state, "train", training=True, seed=epoch_seed(state.seed, epoch)))
        if state.feed is None:
            state.feed = EpochFeed(lambda epochs: self.make_dataset(
                state, "train", training=True, seed=[epoch_seed(state.seed, e) for e in epochs]),
                steps=state.steps_per_epoch, last_epoch=state.epochs)
        return state.feed.epoch(epoch)

    def validation_batches(self, state: FoldState) -> tuple:
        """``(dataset, steps)`` of the validation rows, read once per epoch: through one iterator for the whole
        fold (:func:`~kerasmer.training.feed.reader`), or :func:`single_pass` under a strategy."""
        val = self.make_dataset(state, "val", training=False, seed=state.seed)
        steps = int(val.cardinality())
        if not self.uses_feed(state) or steps < 0:
            return single_pass(val)
        return reader(val, steps, repeat=True), steps

    def fit(self, state: FoldState) -> None:
        """Train epoch by epoch until the plan, early stopping or a failure ends the fold."""
        val_ds = self.validation_batches(state) if state.selector is not None else None
        writer = (tf.summary.create_file_writer(str(state.tensorboard_dir))
                  if state.tensorboard_dir is not None else None)
        callbacks = [keras.callbacks.TerminateOnNaN(), *self.callbacks]
        if self.spec.verbose:
            callbacks.append(EpochProgress(state.fold.name, state.epochs))
        try:
            for epoch in range(state.start_epoch, state.epochs if not state.stopped else state.start_epoch):
                logs = self.fit_epoch(state, epoch, val_ds, callbacks)
                self.end_epoch(state, epoch, logs, writer)
                if state.stopped:
                    break
        finally:
            state.feed = None  # its iterator (and prefetched batches) go now, not when a cycle is collected
            if writer is not None:
                writer.close()

    def fit_epoch(self, state: FoldState, epoch: int, val_ds, callbacks) -> dict:
        """One ``fit`` call for epoch ``epoch`` (0-based); returns its logs plus the epoch's learning rate.

        ``val_ds``: ``None`` or :meth:`validation_batches`' ``(dataset, steps)`` of the validation rows.
        """
        train_ds, steps = self.epoch_batches(state, epoch)
        val_ds, val_steps = val_ds if val_ds is not None else (None, None)
        lr = float(keras.ops.convert_to_numpy(state.model.optimizer.learning_rate))  # at the epoch's first step
        if state.feed is not None:
            callbacks = [*callbacks, state.feed.counter]
        with decode_errors_raised():  # a frame that fails to decode inside tf.data: its kerasmer error, here
            h = state.model.fit(train_ds, validation_data=val_ds, initial_epoch=epoch, epochs=epoch + 1,
                                steps_per_epoch=steps, validation_steps=val_steps, verbose=self.spec.verbose,
                                shuffle=False, callbacks=callbacks)
        if state.feed is not None:
            state.feed.done(epoch)
        logs = {k: float(v[-1]) for k, v in h.history.items()}
        logs["learning_rate"] = lr
        return logs

    def check_loss(self, state: FoldState, epoch: int, logs: dict) -> None:
        """Fail the fold on a NaN/infinite loss or a diverged one (see :func:`divergence_bound`).

        Raises:
            FoldFailed: naming the fold, the epoch, the loss, the bound and the learning rate.
        """
        loss, lr = logs.get("loss", np.nan), logs.get("learning_rate", float("nan"))
        advice = "stopping this fold. Try a lower learning rate or float32 precision."
        if not np.isfinite(loss):
            raise FoldFailed(f"fold {state.fold.name}: training loss became {loss} in epoch {epoch + 1} "
                             f"(learning rate {lr:.3g}); {advice}")
        first = state.history.get("loss", [loss])[0]  # the history is checkpointed, so this survives a resume
        bound = divergence_bound(len(self.spec.class_names), first)
        if loss > bound:
            raise FoldFailed(f"fold {state.fold.name}: training loss diverged to {loss:.3g} in epoch {epoch + 1}, "
                             f"above the bound {bound:.3g} (first epoch's loss {first:.3g}; learning rate {lr:.3g}); "
                             f"{advice}")

    def end_epoch(self, state: FoldState, epoch: int, logs: dict, writer=None) -> None:
        """Check the loss (:meth:`check_loss`), record the epoch, drive the selector and scheduler, checkpoint."""
        self.check_loss(state, epoch, logs)
        for k, v in logs.items():
            state.history.setdefault(k, []).append(v)
        if writer is not None:
            write_scalars(writer, logs, step=epoch + 1)
        if state.selector is not None:
            state.selector.on_epoch_end(epoch, logs)
        if state.plateau is not None:
            state.plateau.on_epoch_end(epoch, dict(logs))
        state.stopped = bool(state.selector is not None and state.model.stop_training)
        if state.checkpoint is not None and state.checkpoint.due():
            saved = {"history": state.history, "plateau": plateau_state(state.plateau), "stopped": state.stopped,
                     "selector": state.selector.get_state() if state.selector is not None else None}
            state.checkpoint.save(state.model, epoch=epoch + 1, state=saved,
                                  best_weights=state.selector.best_weights if state.selector is not None else None)
        self._call_hooks("on_epoch_end", state, epoch, logs)

    def select(self, state: FoldState) -> None:
        """Restore the best validation epoch's weights (or keep the last epoch without validation subjects)."""
        epochs_run = len(state.history.get("loss", []))
        if state.selector is not None and state.selector.best_epoch is not None:
            state.selector.on_train_end()  # restores the best validation epoch's weights
            state.evaluated_epoch = state.selector.best_epoch
            state.selection = "best val_loss (validation subjects only)"
        else:
            state.evaluated_epoch, state.selection = epochs_run, "last epoch (no validation subjects)"

    def predict(self, state: FoldState) -> FoldResult:
        """The only use of the test subjects: one prediction with the selected weights."""
        spec, parts = self.spec, state.parts
        test_ds = self.make_dataset(state, "test", training=False, seed=state.seed)
        trace_predict_once(state.model, test_ds)  # a last partial batch would trace predict a second time
        with decode_errors_raised():
            probs = np.asarray(state.model.predict(test_ds, verbose=0), dtype="float32")
        class_names = list(spec.class_names)
        y_true = np.array([class_names.index(v) for v in parts["test"][spec.label_column]], dtype=int)
        y_pred = probs.argmax(axis=1)
        subjects = (lambda part: sorted(part["subject"].astype(str).unique()))
        test = parts["test"]
        return FoldResult(
            name=state.fold.name, test_subjects=subjects(test), val_subjects=subjects(parts["val"]),
            train_subjects=subjects(parts["train"]), clips=test["clip"].astype(str).tolist(),
            clip_subjects=test["subject"].astype(str).tolist(), y_true=y_true, y_pred=y_pred, probabilities=probs,
            evaluated_epoch=int(state.evaluated_epoch), selection=state.selection,
            epochs_run=len(state.history.get("loss", [])), history=state.history,
            seconds=time.perf_counter() - state.started, metrics=compute_metrics(y_true, y_pred, class_names),
            normalization=state.normalization, epochs_planned=int(state.epochs),
            train_clips=_clip_keys(parts["train"]), val_clips=_clip_keys(parts["val"]), transfer=state.transfer,
            resumed_from_epoch=int(state.start_epoch),
            clip_datasets=(test["dataset"].astype(str).tolist() if "dataset" in test.columns else []),
        )


def trace_predict_once(model: keras.Model, dataset) -> None:
    """Trace Keras' predict function for ``dataset``'s batch-free element spec before ``predict`` runs.

    ``Model.predict`` calls its ``tf.function`` with each batch's concrete
    tensors, so a last partial batch (7 test clips in batches of 4) traces it a
    second time.  Traced first for a ``None`` batch dimension, every batch
    reuses that trace: ``tf.function`` dispatches a call to an existing trace
    whose input types accept it.

    Args:
        model: a compiled Keras model (TensorFlow backend).
        dataset: the ``tf.data.Dataset`` about to be passed to ``model.predict``.

    Example:
        >>> trace_predict_once(model, test_ds); probs = model.predict(test_ds)  # doctest: +SKIP
    """
    if model.distribute_strategy.num_replicas_in_sync > 1:
        return  # per-replica inputs have another structure: Keras traces them as usual
    model.make_predict_function()
    # Keras passes a list with one step's (x, y) element (steps_per_execution=1).
    if model.steps_per_execution == 1 and hasattr(model.predict_function, "get_concrete_function"):
        model.predict_function.get_concrete_function([dataset.element_spec])


def _clip_keys(part) -> list:
    """``subject/clip`` ids (clip names repeat across subjects in CASME II)."""
    return (part["subject"].astype(str) + "/" + part["clip"].astype(str)).tolist()
