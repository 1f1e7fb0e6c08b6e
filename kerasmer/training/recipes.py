"""Training recipes named after the papers they come from.

A :class:`Recipe` fixes the optimizer, learning-rate schedule, batch size and
training length.  ``get_recipe("larnet", batch_size=16)`` returns the paper's
recipe with fields overridden one by one (unknown fields are an error).

Sources (what the issue that specified kerasmer's recipes states for each):

========================= =====================================================
``larnet``                LARNet: Nesterov SGD, lr 0.01, momentum 0.9, weight
                          decay 1e-4, batch 64, 12,000 *iterations* (optimizer
                          steps; converted to epochs with the fold's steps per
                          epoch, see :meth:`Recipe.resolve_epochs`).
``meranet``               MERANet: Adam, untuned linear warm-up (Ma & Yarats,
                          2021: warm-up over ``2 / (1 - beta_2)`` steps), cosine
                          annealing to 0, batch 8, 100 epochs, Xavier init.
``micro_attention``       Micro-attention (Wang et al.): SGD, momentum 0.9,
                          lr divided by 10 every 10 epochs.  The initial lr,
                          batch and epochs are kerasmer defaults (0.01, 32,
                          30), not from the paper.
``learnet``               LEARNet (Verma et al.): SGD, lr 1e-3, batch 25, 100
                          epochs.
``quickstart``            ``kerasmer quickstart``'s demo setting, not a paper's:
                          Adam 1e-3, batch 16, 30 epochs, constant lr.
``shallow``               shallow-CNN baseline: Adam 1e-3, ReduceLROnPlateau
                          x0.5 and early stopping (both on *validation* loss),
                          batch 32, 100 epochs.  Patiences are kerasmer's.
========================= =====================================================

Every schedule is driven by the optimizer's step counter or by validation
logs, never by test data, and its state is part of the checkpoint, so resumed
runs follow the same schedule.
"""

from __future__ import annotations

import dataclasses
import difflib
import math

import keras
from keras import ops

SCHEDULES = ("constant", "step", "warmup_cosine", "plateau")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training recipe.

    Attributes:
        name: recipe name.
        paper: where the recipe comes from.
        optimizer: ``"sgd"`` or ``"adam"``.
        learning_rate: initial (peak) learning rate.
        momentum, nesterov: SGD settings.
        beta_2: Adam's second-moment decay (also sets the untuned warm-up length).
        weight_decay: decoupled weight decay passed to the Keras optimizer (0 = off).
        batch_size: global batch size.
        epochs: epochs per fold (ignored when ``iterations`` is set).
        iterations: total optimizer steps per fold, as some papers state; turned
            into epochs by :meth:`resolve_epochs`.
        schedule: ``"constant"``, ``"step"``, ``"warmup_cosine"`` or ``"plateau"``.
        step_epochs, step_factor: ``"step"``: multiply lr by ``step_factor``
            every ``step_epochs`` epochs.
        warmup_steps: ``"warmup_cosine"``: linear warm-up length in steps; None
            means Ma & Yarats' untuned rule ``2 / (1 - beta_2)``.
        plateau_factor, plateau_patience, min_lr: ``"plateau"``: ReduceLROnPlateau on val_loss.
        early_stopping_patience: stop a fold after this many epochs without a
            better validation loss (None: train all epochs).
        kernel_init: ``"keras"`` (builder defaults) or ``"xavier"`` (Glorot uniform).

    Example:
        >>> r = get_recipe("larnet")
        >>> r.resolve_epochs(steps_per_epoch=100)
        120
    """

    name: str
    paper: str
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    beta_2: float = 0.999
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 100
    iterations: int | None = None
    schedule: str = "constant"
    step_epochs: int = 10
    step_factor: float = 0.1
    warmup_steps: int | None = None
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    min_lr: float = 0.0
    early_stopping_patience: int | None = None
    kernel_init: str = "keras"

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"recipe {self.name!r}: optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"recipe {self.name!r}: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.kernel_init not in ("keras", "xavier"):
            raise ValueError(f"recipe {self.name!r}: kernel_init must be 'keras' or 'xavier', got {self.kernel_init!r}")
        for field in ("batch_size", "epochs"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"recipe {self.name!r}: {field} must be >= 1, got {getattr(self, field)!r}")
        if self.iterations is not None and int(self.iterations) < 1:
            raise ValueError(f"recipe {self.name!r}: iterations must be >= 1 or None, got {self.iterations!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"recipe {self.name!r}: learning_rate must be > 0, got {self.learning_rate!r}")

    def resolve_epochs(self, steps_per_epoch: int) -> int:
        """Epochs to train: ``epochs``, or ``ceil(iterations / steps_per_epoch)`` for iteration budgets.

        Args:
            steps_per_epoch: optimizer steps in one epoch of this fold.

        Returns:
            The number of epochs (at least 1).
        """
        if self.iterations is None:
            return int(self.epochs)
        return max(1, math.ceil(int(self.iterations) / max(1, int(steps_per_epoch))))

    def resolved_warmup_steps(self) -> int:
        """Warm-up steps: ``warmup_steps`` or the untuned rule ``2 / (1 - beta_2)`` (2000 for 0.999)."""
        if self.warmup_steps is not None:
            return int(self.warmup_steps)
        return int(round(2.0 / (1.0 - self.beta_2)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {
    "larnet": Recipe("larnet", "LARNet (Lossless Attention Residual Network for MER)", optimizer="sgd",
                     learning_rate=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4, batch_size=64,
                     iterations=12_000),
    "meranet": Recipe("meranet", "MERANet (3D residual attention network for MER); warm-up: Ma & Yarats 2021",
                      optimizer="adam", learning_rate=1e-3, batch_size=8, epochs=100, schedule="warmup_cosine",
                      kernel_init="xavier"),
    "micro_attention": Recipe("micro_attention", "Micro-attention for MER (Wang et al.)", optimizer="sgd",
                              learning_rate=0.01, momentum=0.9, batch_size=32, epochs=30, schedule="step",
                              step_epochs=10, step_factor=0.1),
    "learnet": Recipe("learnet", "LEARNet (Verma et al., IEEE TIP 2019)", optimizer="sgd", learning_rate=1e-3,
                      batch_size=25, epochs=100),
    "quickstart": Recipe("quickstart", "kerasmer quickstart's fast demo setting (not a paper's)", optimizer="adam",
                         learning_rate=1e-3, batch_size=16, epochs=30),
    "shallow": Recipe("shallow", "shallow-CNN baseline (kerasmer)", optimizer="adam", learning_rate=1e-3,
                      batch_size=32, epochs=100, schedule="plateau", plateau_factor=0.5, plateau_patience=5,
                      early_stopping_patience=10),
}


# The quickstart's --optimizer choices, as recipe fields.
OPTIMIZER_CHOICES = {"adam": dict(optimizer="adam"), "sgd": dict(optimizer="sgd", momentum=0.9),
                     "sgd_nesterov": dict(optimizer="sgd", momentum=0.9, nesterov=True)}


def list_recipes() -> list[str]:
    """Names of the built-in recipes."""
    return sorted(RECIPES)


def get_recipe(name: str, **overrides) -> Recipe:
    """A built-in recipe with some fields overridden.

    Args:
        name: recipe name (see :func:`list_recipes`).
        **overrides: :class:`Recipe` fields to change; ``None`` values are ignored
            so CLI flags left unset keep the recipe's value.

    Returns:
        A :class:`Recipe`.

    Raises:
        ValueError: an unknown recipe or field (the message names the close ones).

    Example:
        >>> get_recipe("learnet", epochs=3).epochs
        3
    """
    if name not in RECIPES:
        close = difflib.get_close_matches(str(name), list(RECIPES), n=2, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown recipe {name!r}.{hint} Recipes: {', '.join(list_recipes())}")
    fields = {f.name for f in dataclasses.fields(Recipe)} - {"name", "paper"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"recipe {name!r}: unknown field(s) {unknown}; fields: {sorted(fields)}")
    changes = {k: _coerce(name, k, v) for k, v in overrides.items() if v is not None}
    return dataclasses.replace(RECIPES[name], **changes)


_INT_FIELDS = ("batch_size", "epochs", "iterations", "step_epochs", "warmup_steps", "plateau_patience",
               "early_stopping_patience")
_FLOAT_FIELDS = ("learning_rate", "momentum", "beta_2", "weight_decay", "step_factor", "plateau_factor", "min_lr")


def coerce_overrides(recipe: str, overrides: dict) -> dict:
    """``overrides`` with every value converted to its recipe field's type (None values kept)."""
    return {k: (None if v is None else _coerce(recipe, k, v)) for k, v in (overrides or {}).items()}


def _coerce(recipe: str, field: str, value):
    """Give an override its field's type ("1e-4" from a YAML/CLI string becomes 0.0001)."""
    try:
        if field in _INT_FIELDS:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if field in _FLOAT_FIELDS:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if field == "nesterov":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise ValueError(f"recipe {recipe!r}: field {field!r} got {value!r}, which is not a valid "
                         f"{'integer' if field in _INT_FIELDS else 'number' if field in _FLOAT_FIELDS else 'bool'}"
                         ) from None
    return str(value)


@keras.saving.register_keras_serializable(package="kerasmer")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr = initial * factor ** floor(step / (steps_per_epoch * every_epochs))``."""

    def __init__(self, initial_learning_rate, steps_per_epoch, every_epochs, factor):
        self.initial_learning_rate = float(initial_learning_rate)
        self.steps_per_epoch = int(steps_per_epoch)
        self.every_epochs = int(every_epochs)
        self.factor = float(factor)

    def __call__(self, step):
        period = float(self.steps_per_epoch * self.every_epochs)
        k = ops.floor(ops.cast(step, "float32") / period)
        return self.initial_learning_rate * ops.power(self.factor, k)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "steps_per_epoch": self.steps_per_epoch,
                "every_epochs": self.every_epochs, "factor": self.factor}


@keras.saving.register_keras_serializable(package="kerasmer")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up ``min(1, (step + 1) / warmup_steps)`` times cosine annealing to 0 over ``total_steps``."""

    def __init__(self, peak_learning_rate, total_steps, warmup_steps):
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(1, int(warmup_steps))

    def __call__(self, step):
        t = ops.cast(step, "float32")
        warm = ops.minimum(1.0, (t + 1.0) / float(self.warmup_steps))
        progress = ops.minimum(t, float(self.total_steps)) / float(self.total_steps)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        return self.peak_learning_rate * warm * cosine

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def make_optimizer(recipe: Recipe, *, steps_per_epoch: int, epochs: int):
    """A fresh Keras optimizer for ``recipe`` with its learning-rate schedule.

    Args:
        recipe: the recipe.
        steps_per_epoch: optimizer steps per epoch of this fold.
        epochs: epochs this fold trains (sets the cosine length).

    Returns:
        A ``keras.optimizers.Optimizer``.  Plateau schedules use a plain float
        learning rate, lowered by :class:`keras.callbacks.ReduceLROnPlateau`.

    Example:
        >>> opt = make_optimizer(get_recipe("micro_attention"), steps_per_epoch=10, epochs=30)
    """
    lr = recipe.learning_rate
    if recipe.schedule == "step":
        lr = StepDecay(recipe.learning_rate, steps_per_epoch, recipe.step_epochs, recipe.step_factor)
    elif recipe.schedule == "warmup_cosine":
        lr = WarmupCosine(recipe.learning_rate, steps_per_epoch * epochs, recipe.resolved_warmup_steps())
    wd = recipe.weight_decay or None
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=recipe.momentum, nesterov=recipe.nesterov, weight_decay=wd)
    return keras.optimizers.Adam(lr, beta_2=recipe.beta_2, weight_decay=wd)


def apply_kernel_init(model: keras.Model, kernel_init: str, *, seed: int = 0) -> list[str]:
    """Make every Conv/Dense kernel Xavier (Glorot-uniform) initialised, if asked.

    Keras' Conv and Dense layers already default to Glorot uniform (Xavier), so
    only layers built with another initializer are re-drawn.

    Args:
        model: a built model.
        kernel_init: ``"keras"`` (do nothing) or ``"xavier"``.
        seed: seed of the re-drawn kernels.

    Returns:
        Names of the layers whose kernels were re-initialised.
    """
    if kernel_init == "keras":
        return []
    changed = []
    for i, layer in enumerate(_all_layers(model)):
        init = getattr(layer, "kernel_initializer", None)
        kernel = getattr(layer, "kernel", None)
        if init is None or kernel is None or isinstance(init, keras.initializers.GlorotUniform):
            continue
        kernel.assign(keras.initializers.GlorotUniform(seed=seed + i)(kernel.shape, dtype=kernel.dtype))
        changed.append(layer.name)
    return changed


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
