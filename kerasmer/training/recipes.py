"""Training recipes named after the papers they come from.

A :class:`Recipe` fixes the optimizer, learning-rate schedule, batch size and
training length.  ``get_recipe("larnet", batch_size=16)`` returns the paper's
recipe with fields overridden one by one (unknown fields are an error).

A recipe is one paper's setting.  Where the paper gives another setting per
evaluation protocol (Micro-Attention's LOSO, CDE and HDE), the recipe holds
them in ``variants`` and ``get_recipe(name, protocol=...)`` (which
:func:`kerasmer.training.run` calls with the run's protocol) applies the one
of that protocol.  A recipe also carries the paper's training augmentation
(``augment``) and class resampling (``balance``), which reach training
batches only; a run's ``data_options`` override them, and they override the
model spec's.

Every field's source is in the recipe's ``sources`` mapping: the paper's
section, or "kerasmer default: <reason>", or "inferred: <reason>".
:func:`source_table` lists them; ``kerasmer recipes --verbose`` prints it
and ``docs/training.md`` holds the same table (a test compares them).

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

from kerasmer.data.pipeline.augment import SHALLOW_AUGMENT

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
        warmup_fraction: ``"warmup_cosine"``: the longest warm-up as a share of
            the fold's steps, so that the peak is reached within training.
        augment: training augmentation (a dict of ``kerasmer.data`` augment
            settings), or None for the model spec's / the pipeline default.
        balance: training class resampling (``True``/``"epoch"`` or
            ``"oversample"``, see ``kerasmer.data.make_dataset``), or None for none.
        variants: protocol name -> field values (and their ``"sources"``) that
            replace this recipe's for runs with that protocol.
        sources: field name -> where its value comes from.
        protocol: the protocol whose variant was applied (None: the base setting).
        freeze_pretrained: shell-style layer-name patterns frozen when ``--init-from``
            gave weights to every layer with weights that a pattern matches (the
            paper froze its pretrained parts); ``()`` or the override
            ``freeze_pretrained=[]`` (``--set freeze_pretrained=[]``) turns it off.  See
            :func:`kerasmer.models.transfer.freeze_initialised`.

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
    freeze_pretrained: tuple = ()
    warmup_fraction: float = 0.1
    augment: dict | None = None
    balance: bool | str | None = None
    variants: dict = dataclasses.field(default_factory=dict)
    sources: dict = dataclasses.field(default_factory=dict)
    protocol: str | None = None

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
        if not 0 < self.warmup_fraction <= 1:
            raise ValueError(f"recipe {self.name!r}: warmup_fraction must be in (0, 1], got {self.warmup_fraction!r}")
        if self.balance not in (None, False, True, "epoch", "oversample"):
            raise ValueError(f"recipe {self.name!r}: balance must be None, False, True, 'epoch' or 'oversample', "
                             f"got {self.balance!r}")

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

    def resolved_warmup_steps(self, total_steps: int | None = None) -> int:
        """Warm-up steps: ``warmup_steps``, or the untuned rule ``2 / (1 - beta_2)`` (2000 for 0.999).

        Args:
            total_steps: the fold's optimizer steps; when given, the untuned rule is
                capped at ``warmup_fraction`` of them (at least 1), because 2,000
                steps are longer than a whole small-dataset run and the peak would
                never be reached.  An explicit ``warmup_steps`` is not capped.

        Returns:
            The warm-up length in steps.

        Example:
            >>> get_recipe("meranet").resolved_warmup_steps(1200)
            120
        """
        if self.warmup_steps is not None:
            return int(self.warmup_steps)
        rule = int(round(2.0 / (1.0 - self.beta_2)))
        if total_steps is None:
            return rule
        return max(1, min(rule, int(self.warmup_fraction * int(total_steps))))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_KD = "kerasmer default: "
_NO_BAL = _KD + "the paper names no class resampling"
_NO_WD = _KD + "the paper states no weight decay"
_NO_ES = _KD + "the paper names no early stopping: every epoch is trained"
_KERAS_INIT = _KD + "Keras' initializers (Glorot uniform); the paper names none"
_ADAM_B2 = _KD + "Adam's usual 0.999; the paper gives none"

# Micro-Attention (Wang et al.), §4.1 and §4.2.  The text extraction drops minus signs ("1e4" for 1e-4), so every
# exponent is read as negative; "weight decay= 3e2" (HDE) becomes 3e-2 by the same rule (docs/training.md).
_MA = "paper §4.2"
_MA_COLOR_ROT = {"flip": False, "brightness": 0.0, "color_shift": 20 / 255, "rotation": 8.0, "probability": 0.5}
_MA_CROP = {"corner_crop": 224 / 240}
# LEARNet §IV's offline pool (seven angles, 15° apart, equalised, each also flipped), drawn online: one image of
# the pool per clip and epoch.  Equalisation with probability 0.5 keeps the unenhanced image, which is what the
# test clips are, in the training distribution (docs/architectures.md, "LEARNet's augmentation").
_LEARNET_AUGMENT = {"flip": True, "rotation": 45.0, "rotation_step": 15.0, "brightness": 0.0, "equalize": 0.5}
_MA_SOURCES = {
    "optimizer": _MA + ": 'batch gradient descent with a momentum of 0.9' (Caffe SGD)",
    "momentum": _MA + ": 'momentum=0.9' in the HDE, CDE and LOSO settings",
    "nesterov": "inferred: Caffe's SGD solver (§4.2: 'implemented with Caffe') is plain momentum",
    "learning_rate": _MA + ", LOSO: 'initial learning rate is set to 1e3' (read 1e-3)",
    "weight_decay": _MA + ", LOSO: 'weight decay= 5e4' (read 5e-4); decoupled in Keras (see below)",
    "batch_size": _MA + ", LOSO: 'the batch size is set to 10'",
    "epochs": _KD + "the paper gives no fine-tuning length; 30 epochs = three divisions by 10",
    "schedule": _MA + ": 'decreased 10 times smaller after every 10 epochs'",
    "step_epochs": _MA + ": 'after every 10 epochs'",
    "step_factor": _MA + ": '10 times smaller'",
    "early_stopping_patience": _NO_ES,
    "kernel_init": _KD + "the paper starts from ImageNet and macro-expression pretraining (give --init-from)",
    "augment": _MA + ", LOSO: 'the data augmentation methods mentioned above are together used': colour shift "
               "±20 and rotation ±8° with probability 0.5 (HDE), four-corner 224-of-240 crops (CDE; probability "
               "0.5 is kerasmer's reading)",
    "balance": _MA + ": 'resampled according to the one having largest size', in every training set",
}
_MA_VARIANTS = {
    "megc_composite": {
        "batch_size": 8, "learning_rate": 1e-3, "weight_decay": 5e-6,
        "augment": {"flip": False, "rotation": 0.0, "brightness": 0.0, "probability": 0.5, **_MA_CROP},
        "sources": {
            "batch_size": _MA + ", CDE: 'the batch size is set to 8'",
            "learning_rate": _MA + ", CDE: 'initial learning rate is set to 1e3' (read 1e-3)",
            "weight_decay": _MA + ", CDE: 'weight decay= 5e6' (read 5e-6)",
            "augment": _MA + ", CDE: 'cropping the four corners of the original image with size of 240×240 into "
                       "a new one with size of 224×224' (no colour shift or rotation named; probability 0.5 is "
                       "kerasmer's reading)",
        }},
    "hde": {
        "batch_size": 10, "learning_rate": 1e-4, "weight_decay": 3e-2, "augment": dict(_MA_COLOR_ROT),
        "sources": {
            "batch_size": _MA + ", HDE: 'the batch size is set to 10'",
            "learning_rate": _MA + ", HDE: 'initial learning rate is set to 1e4' (read 1e-4)",
            "weight_decay": _MA + ", HDE: 'weight decay= 3e2', read 3e-2 like the other exponents (the sign is lost)",
            "augment": _MA + ", HDE: 'Color shift (maximum value of 20), rotation (maximum degree of 8) ... with "
                       "selecting probability of 0.5'",
        }},
}

_MERANET = "paper §4.3"
_LEARNET = "paper §IV"
_LARNET = "paper §4.2.1"
_SHALLOW = "paper §3"
_DEMO = _KD + "the quickstart's fast demo setting, not a paper's"

RECIPES: dict[str, Recipe] = {
    "larnet": Recipe(
        "larnet", "LARNet (Lossless Attention Residual Network for MER), Sensors 2021", optimizer="sgd",
        learning_rate=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4, batch_size=64, iterations=12_000,
        # Sensors 2021, §3: the ImageNet-pretrained Attention-92/56 stages were frozen.
        freeze_pretrained=("stage1_*", "stage2_*"),
        augment={"flip": True, "vertical_flip": True, "pad_crop": 4, "rotation": 0.0, "brightness": 0.0},
        sources={"optimizer": _LARNET + ": 'Nesterov SGD'", "nesterov": _LARNET + ": 'Nesterov SGD'",
                 "momentum": _LARNET + ": 'a momentum of 0.9'",
                 "weight_decay": _LARNET + ": 'A weight decay of 0.0001'",
                 "learning_rate": _LARNET + ": 'an initial learning rate of 0.01'",
                 "batch_size": _LARNET + ": 'a batch size of 64'",
                 "iterations": _LARNET + ": 'terminated after 12,000 iterations'",
                 "schedule": _KD + "§4.2.1 gives an initial learning rate and no schedule",
                 "early_stopping_patience": _LARNET + ": a fixed 12,000 iterations",
                 "kernel_init": _KERAS_INIT,
                 "freeze_pretrained": "paper §3: the ImageNet-pretrained stages are frozen",
                 "augment": _LARNET + ": 'padded by four pixels on each side ... horizontal and vertical flip' "
                            "(Wang et al.'s CIFAR recipe: pad, then a random crop of the original size; padded with 0, "
                            "docs/architectures.md)",
                 "balance": _NO_BAL}),
    "meranet": Recipe(
        "meranet", "MERANet (3D residual attention network for MER); warm-up: Ma & Yarats 2019 [22]",
        optimizer="adam", learning_rate=0.1, batch_size=8, epochs=100, schedule="warmup_cosine", kernel_init="xavier",
        augment={"flip": True, "rotation": 0.0, "brightness": 0.0},
        sources={"optimizer": _MERANET + ": 'The optimizer proposed in [22]' (Ma & Yarats: Adam, untuned warm-up)",
                 "learning_rate": _MERANET + ": 'The learning rate is initialized to 0.1'", "beta_2": _ADAM_B2,
                 "weight_decay": _NO_WD, "batch_size": _MERANET + ": 'a batch size of 8'",
                 "epochs": _MERANET + ": 'trained for 100 epochs'",
                 "schedule": _MERANET + ": untuned linear warm-up [22], then cosine annealing [20] 'from the "
                             "initial value to 0'",
                 "warmup_steps": _MERANET + " via [22]: the untuned rule 2 / (1 - beta_2) = 2,000 steps",
                 "warmup_fraction": _KD + "caps the warm-up at 10 % of the fold's steps, so the peak is reached "
                                    "(2,000 steps outlast 100 epochs of 12 steps)",
                 "early_stopping_patience": _NO_ES, "kernel_init": _MERANET + ": Xavier initialisation",
                 "augment": "paper §4.2: 'each sample is horizontally flipped with 0.5 probability' (nothing else)",
                 "balance": _NO_BAL}),
    "micro_attention": Recipe(
        "micro_attention", "Micro-Attention for MER (Wang et al.), fine-tuning; per protocol: LOSO, CDE, HDE",
        optimizer="sgd", learning_rate=1e-3, momentum=0.9, weight_decay=5e-4, batch_size=10, epochs=30,
        schedule="step", step_epochs=10, step_factor=0.1, augment={**_MA_COLOR_ROT, **_MA_CROP},
        balance="oversample", variants=_MA_VARIANTS, sources=_MA_SOURCES),
    "micro_attention_pretrain": Recipe(
        "micro_attention_pretrain", "Micro-Attention for MER (Wang et al.), pretraining on macro-expressions",
        optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=50, epochs=60, schedule="step",
        step_epochs=20, step_factor=0.1,
        augment={"flip": False, "brightness": 0.0, "color_shift": 20 / 255, "rotation": 10.0, "smoothing": 6,
                 "probability": 0.5},
        sources={**_MA_SOURCES,
                 "momentum": _MA + ", pretraining: 'batch gradient descent with a momentum of 0.9'",
                 "learning_rate": _MA + ", pretraining: 'learning rate is initialized with 0.01'",
                 "batch_size": _MA + ", pretraining: 'the batch size is set to 50'",
                 "weight_decay": _NO_WD + " for pretraining",
                 "epochs": _KD + "the paper gives no pretraining length; 60 epochs = three divisions by 10",
                 "schedule": _MA + ", pretraining: 'decrease 10 times smaller after every 20 epochs'",
                 "step_epochs": _MA + ", pretraining: 'after every 20 epochs'",
                 "kernel_init": _KD + "the paper starts from ImageNet weights (give --init-from)",
                 "augment": "paper §4.1: 'color shift with maximum value of 20, rotation with maximum degree of "
                            "10 and smoothing with maximum window size of 6', 'selecting probability of 0.5'",
                 "balance": _NO_BAL + " for pretraining"}),
    "learnet": Recipe(
        "learnet", "LEARNet (Verma et al., IEEE TIP 2019)", optimizer="sgd", learning_rate=1e-3, momentum=0.9,
        batch_size=25, epochs=100, augment=dict(_LEARNET_AUGMENT),
        sources={"optimizer": _LEARNET + ": 'Stochastic gradient descent (SGD)'",
                 "momentum": "inferred: trained in MATLAB r2018a (§IV), whose SGD solver ('sgdm') defaults to "
                             "momentum 0.9; not stated",
                 "nesterov": "inferred: MATLAB's 'sgdm' is plain momentum",
                 "learning_rate": _LEARNET + ": 'initialized learning rate to 1e-3'",
                 "weight_decay": _KD + "not stated (MATLAB's default L2Regularization would be 1e-4)",
                 "batch_size": _LEARNET + ": 'min batch size to 25'", "epochs": _LEARNET + ": 'train up to 100 epochs'",
                 "schedule": "inferred: the paper names none and MATLAB's default schedule is constant",
                 "early_stopping_patience": _NO_ES, "kernel_init": _KERAS_INIT,
                 "augment": _LEARNET + ": 'each dynamic image is rotated between [-45°, 45°] with the increment of "
                            "15°, enhanced by histogram equalization and then all generated images are flipped "
                            "horizontally'; drawn online, one of the pool's images per clip and epoch, equalised "
                            "with probability 0.5 (docs/architectures.md, 'LEARNet's augmentation')",
                 "balance": _NO_BAL}),
    "quickstart": Recipe(
        "quickstart", "kerasmer quickstart's fast demo setting (not a paper's)", optimizer="adam",
        learning_rate=1e-3, batch_size=16, epochs=30,
        sources={f: _DEMO for f in ("optimizer", "learning_rate", "beta_2", "weight_decay", "batch_size", "epochs",
                                    "schedule", "early_stopping_patience", "kernel_init", "augment", "balance")}),
    "shallow": Recipe(
        "shallow", "Upadhy & Verlekar, shallow convolution and attention-based models for MER", optimizer="adam",
        learning_rate=1e-3, batch_size=32, epochs=100, schedule="plateau", plateau_factor=0.5, plateau_patience=5,
        early_stopping_patience=10, augment=dict(SHALLOW_AUGMENT), balance="oversample",
        sources={"optimizer": _SHALLOW + ": 'the ADAM optimiser'", "beta_2": _ADAM_B2,
                 "learning_rate": _SHALLOW + ": 'an adaptive learning rate initialised at 10^-3'",
                 "weight_decay": _NO_WD,
                 "schedule": _SHALLOW + ": 'adaptive learning rate ... and a reduction factor of 0.5', read as "
                             "ReduceLROnPlateau on validation loss",
                 "plateau_factor": _SHALLOW + ": 'a reduction factor of 0.5'",
                 "plateau_patience": _KD + "the paper gives no patience", "min_lr": _KD + "the paper gives none",
                 "batch_size": _SHALLOW + ": 'the batch size is 32'",
                 "epochs": _SHALLOW + ": 'The epochs are set to 100 with early stopping'",
                 "early_stopping_patience": _SHALLOW + ": 'with early stopping'; the patience of 10 is kerasmer's",
                 "kernel_init": _KERAS_INIT,
                 "augment": _SHALLOW + ": 'horizontal flip, change in brightness and salt and pepper noise' "
                            "(magnitudes are kerasmer's: ±10 % brightness, 1 % of pixels)",
                 "balance": _SHALLOW + ": 'oversampling is performed using data augmentations' of the "
                            "under-represented classes, read as oversampling to the largest class"}),
}


# The quickstart's --optimizer choices, as recipe fields.
OPTIMIZER_CHOICES = {"adam": dict(optimizer="adam"), "sgd": dict(optimizer="sgd", momentum=0.9),
                     "sgd_nesterov": dict(optimizer="sgd", momentum=0.9, nesterov=True)}


def list_recipes() -> list[str]:
    """Names of the built-in recipes."""
    return sorted(RECIPES)


def shown_fields(recipe: Recipe) -> list[str]:
    """The fields that act in ``recipe`` (its optimizer's and schedule's), in the order the tables list them."""
    fields = ["optimizer", "learning_rate"] + (["momentum", "nesterov"] if recipe.optimizer == "sgd" else ["beta_2"])
    fields += ["weight_decay", "batch_size", "iterations" if recipe.iterations is not None else "epochs", "schedule"]
    fields += {"step": ["step_epochs", "step_factor"], "warmup_cosine": ["warmup_steps", "warmup_fraction"],
               "plateau": ["plateau_factor", "plateau_patience", "min_lr"]}.get(recipe.schedule, [])
    fields += ["early_stopping_patience", "kernel_init"] + (["freeze_pretrained"] if recipe.freeze_pretrained else [])
    return fields + ["augment", "balance"]


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return ", ".join(map(str, value))
    return str(value)


def source_table(recipe: Recipe | str, protocol: str | None = None) -> list[tuple[str, str, str]]:
    """Every acting field of a recipe with its value and source (``recipe.sources``).

    Args:
        recipe: a :class:`Recipe` or a built-in recipe's name.
        protocol: apply this protocol's variant first (see :func:`get_recipe`).

    Returns:
        ``(field, value, source)`` rows, in :func:`shown_fields` order.

    Raises:
        ValueError: a field without a source (every built-in recipe has them all; a test checks it).

    Example:
        >>> source_table("learnet")[0]
        ('optimizer', 'sgd', "paper §IV: 'Stochastic gradient descent (SGD)'")
    """
    r = get_recipe(recipe, protocol) if isinstance(recipe, str) else for_protocol(recipe, protocol)
    missing = [f for f in shown_fields(r) if f not in r.sources]
    if missing:
        raise ValueError(f"recipe {r.name!r}: no source for field(s) {missing}")
    return [(f, _show(getattr(r, f)), r.sources[f]) for f in shown_fields(r)]


def sources_markdown() -> str:
    """The Markdown tables of every built-in recipe and variant (docs/training.md holds this text verbatim)."""
    parts = []
    for name in list_recipes():
        for protocol in [None, *RECIPES[name].variants]:
            title = f"`{name}`" + (f", protocol `{protocol}`" if protocol else "")
            rows = "\n".join(f"| `{f}` | {v} | {src} |" for f, v, src in source_table(name, protocol))
            parts.append(f"**{title}** ({RECIPES[name].paper})\n\n| field | value | source |\n|---|---|---|\n{rows}")
    return "\n\n".join(parts) + "\n"


# Fields a run cannot override with recipe_overrides: identity and bookkeeping, and the training-data settings,
# which a run changes with data_options (augment, balance) so that there is one way to do it.
_FIXED_FIELDS = ("name", "paper", "variants", "sources", "protocol", "augment", "balance")


def get_recipe(name: str, protocol: str | None = None, **overrides) -> Recipe:
    """A built-in recipe, in its setting for ``protocol``, with some fields overridden.

    Args:
        name: recipe name (see :func:`list_recipes`).
        protocol: the run's protocol; where the recipe has a variant for it
            (``Recipe.variants``, e.g. Micro-Attention's ``megc_composite`` = the
            paper's CDE and ``hde``), its fields replace the base setting's.
            None or a protocol without a variant: the base setting.
        **overrides: :class:`Recipe` fields to change (after the variant);
            ``None`` values are ignored so CLI flags left unset keep the recipe's value.
            ``epochs`` replaces an iteration budget (``iterations`` becomes None); giving
            both is an error.

    Returns:
        A :class:`Recipe`.

    Raises:
        ValueError: an unknown recipe or field (the message names the close ones).

    Example:
        >>> get_recipe("learnet", epochs=3).epochs
        3
        >>> get_recipe("micro_attention", protocol="hde").learning_rate
        0.0001
    """
    if name not in RECIPES:
        close = difflib.get_close_matches(str(name), list(RECIPES), n=2, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown recipe {name!r}.{hint} Recipes: {', '.join(list_recipes())}")
    fields = {f.name for f in dataclasses.fields(Recipe)} - set(_FIXED_FIELDS)
    data = sorted(set(overrides) & {"augment", "balance"})
    if data:
        raise ValueError(f"recipe {name!r}: {data} are training-data settings; change them with data_options "
                         f"(--data-option {data[0]}=...), which override the recipe's")
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"recipe {name!r}: unknown field(s) {unknown}; fields: {sorted(fields)}")
    changes = {k: _coerce(name, k, v) for k, v in overrides.items() if v is not None}
    base = for_protocol(RECIPES[name], protocol)
    if "epochs" in changes:
        if "iterations" in changes:
            raise ValueError(f"recipe {name!r}: set epochs ({changes['epochs']}) or iterations "
                             f"({changes['iterations']}), not both: one of them fixes the training length")
        # An explicit epoch count is the training length asked for; a paper's iteration budget would
        # otherwise win silently (resolve_epochs) and train e.g. LARNet's 12,000 steps for "--epochs 10".
        changes["iterations"] = None
    return dataclasses.replace(base, **changes)


def for_protocol(recipe: Recipe, protocol: str | None) -> Recipe:
    """``recipe`` with the fields (and sources) of its variant for ``protocol``; itself if it has none.

    Example:
        >>> for_protocol(RECIPES["micro_attention"], "megc_composite").batch_size
        8
    """
    variant = dict(recipe.variants.get(protocol, {})) if protocol is not None else {}
    if not variant:
        return recipe
    sources = {**recipe.sources, **variant.pop("sources", {})}
    return dataclasses.replace(recipe, **variant, sources=sources, protocol=protocol)


_INT_FIELDS = ("batch_size", "epochs", "iterations", "step_epochs", "warmup_steps", "plateau_patience",
               "early_stopping_patience")
_FLOAT_FIELDS = ("learning_rate", "momentum", "beta_2", "weight_decay", "step_factor", "plateau_factor", "min_lr",
                 "warmup_fraction")


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
        if field == "freeze_pretrained":  # "a,b" from the CLI, or a list from YAML/JSON
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(v).strip() for v in items if str(v).strip())
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
    """Linear warm-up to the peak, then cosine annealing from the peak to 0 over the remaining steps.

    ``lr(t) = peak * (t + 1) / W`` for ``t < W`` (the peak at step ``W - 1``, the
    end of warm-up), then ``peak * (1 + cos(pi * (t - W + 1) / (T - W + 1))) / 2``,
    which is 0 at ``t = T`` (``T = total_steps``).  MERANet (§4.3) warms up with
    Ma & Yarats' untuned rule and anneals "from the initial value to 0"; the
    earlier product of the two never reached the peak when ``W`` was not small
    against ``T``.  A warm-up longer than ``T`` is cut to ``T``.

    Args:
        peak_learning_rate: the learning rate at the end of warm-up.
        total_steps: the fold's optimizer steps.
        warmup_steps: warm-up length in steps.

    Example:
        >>> s = WarmupCosine(0.1, total_steps=100, warmup_steps=10)
        >>> round(float(s(9)), 6), round(float(s(100)), 6)
        (0.1, 0.0)
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_steps):
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(1, int(warmup_steps))

    def __call__(self, step):
        t = ops.cast(step, "float32")
        w = float(min(self.warmup_steps, self.total_steps))
        warm = (t + 1.0) / w
        progress = ops.clip((t - w + 1.0) / (float(self.total_steps) - w + 1.0), 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        return self.peak_learning_rate * ops.where(t < w - 1.0, warm, cosine)

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
        total = steps_per_epoch * epochs
        lr = WarmupCosine(recipe.learning_rate, total, recipe.resolved_warmup_steps(total))
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
