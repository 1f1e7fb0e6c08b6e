"""The run configuration: what ``kerasmer train`` and :func:`kerasmer.training.run` take.

A :class:`RunConfig` names the model, the dataset(s), the label scheme, the
protocol, the recipe (plus field overrides), the precision, the seed and the
output directory.  It loads from YAML or JSON, and the resolved config is saved
into the run directory as ``config.json`` so a run can be reproduced and
resumed with the same settings.

Example YAML::

    model: learnet
    data: {casme2: /data/CASME2}
    labels: null            # the dataset's own emotions; "megc3" for 3 classes
    protocol: loso
    recipe: learnet
    recipe_overrides: {epochs: 50}
    precision: float32
    seed: 0
    output_dir: runs/learnet-casme2
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import numbers
import os
from pathlib import Path

from kerasmer.core.atomic import atomic_write_text
from kerasmer.core.precision import validate_precision
from kerasmer.data import MISMATCH_POLICIES
from kerasmer.data.synthetic import resolve_settings
from kerasmer.evaluation.protocols import get_protocol
from kerasmer.models import model_info
from kerasmer.models.registry import check_input_shape
from kerasmer.training.recipes import coerce_overrides, get_recipe
from kerasmer.training.trainer import split_data_options

STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass
class RunConfig:
    """Everything a training run needs.

    Attributes:
        model: registry model name.
        data: ``{dataset_name: root}``.  The name ``"synthetic"`` writes the
            synthetic CASME II-format set (see ``synthetic``) to its root (None:
            ``<output_dir>/synthetic_data``) and reads it as ``casme2``.
        labels: label scheme for ``kerasmer.data.map_labels`` (e.g.
            ``"megc3"``), or None for the dataset's own emotion labels.
        protocol: a name of ``kerasmer.evaluation.PROTOCOLS`` (``"loso"``,
            ``"megc_composite"``, ``"hde"``, ``"kfold"``, ``"split"``).
        recipe: recipe name (``kerasmer.training.recipes``); None: the model
            spec's default recipe (``kerasmer.model_info(model).recipe``).
        recipe_overrides: recipe fields to change, e.g. ``{"epochs": 3}``.
        precision: ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"`` or ``"auto"``.
        seed: base seed; fold ``i`` uses ``seed + i``.
        output_dir: the run directory.
        input_shape: model input shape (None: the registry's default).
        model_overrides: extra ``build_model`` options.
        data_options: input options for ``kerasmer.data``: ``apex``
            (``"annotated"``/``"spotted"``/``"middle"``), ``face`` (``"haar"``/``"mtcnn"``),
            ``sampler`` (clips), ``flow`` (flow builder options), ``cache_dir``
            (on-disk preprocessing cache shared across folds and runs),
            ``augment`` and ``balance`` (class-balanced oversampling of training batches).
        on_mismatch: ``"fix"`` (default), ``"clip"`` or ``"drop"``: what the readers do with a clip
            whose annotated onset..offset disagrees with the frames in its folder (``docs/data.md``).
        val_fraction: share of each fold's training subjects used for validation.
        n_splits: ``"kfold"``: number of folds.
        test_fraction: ``"split"``: share of clips held out for testing.
        folds: run only these fold names (for fan-out jobs); None runs all.
        strategy: ``"default"``, ``"mirrored"`` or ``"multiworker"``.
        init_from: ``.keras`` / ``.weights.h5`` file to load weights from by layer name.
        freeze: shell-style patterns of layer names to freeze.
        deterministic: enable TensorFlow op determinism (needed for bit-equal resumes).
        resume: skip finished folds and resume the interrupted one from its checkpoint.
        checkpoint_every: seconds: a fold's checkpoint is written after an epoch once this much time has
            passed since the fold's last one (or its start); 0 writes one after every epoch.  A killed run
            redoes at most this much of a fold; results do not depend on it (epoch seeds and the saved state
            make a resume exact from any epoch).  The default, 30 s, changes nothing for epochs longer than
            that and saves most writes for short ones (a LEARNet epoch on the demo set, timed once under
            load: 0.3 s, 0.05 s of which was the checkpoint).
        synthetic: options for ``make_synthetic``: ``preset`` (``"demo"``, ``"casme2-like"``), ``seed``
            and any setting (``subjects``, ``clips_per_class``, ``amplitude``, ...; ``docs/data.md``).
        verbose: Keras epoch progress (0, 1 or 2).
        baselines: score the trivial baselines (majority class, logistic regression on the apex frame and
            on |apex - onset|, :mod:`kerasmer.evaluation.baselines`) on the folds the run uses, and show them
            beside the model's score in ``metrics.json``/``report.md``; a few seconds per run, but switch it
            off for huge datasets.
        seeds: run the whole protocol once per seed (``OUT/seed_<n>/``, each its own run with ``seed=n``)
            and summarise the pooled scores in ``OUT/seeds.json``/``seeds.md``
            (:func:`kerasmer.training.runner.run_seeds`); None: one run with ``seed``.
    """

    model: str = "learnet"
    data: dict = dataclasses.field(default_factory=lambda: {"synthetic": None})
    labels: str | None = None
    protocol: str = "loso"
    recipe: str | None = None
    recipe_overrides: dict = dataclasses.field(default_factory=dict)
    precision: str = "float32"
    seed: int = 0
    output_dir: str = "runs/kerasmer"
    input_shape: list | None = None
    model_overrides: dict = dataclasses.field(default_factory=dict)
    data_options: dict = dataclasses.field(default_factory=dict)
    on_mismatch: str = "fix"
    val_fraction: float = 0.15
    n_splits: int = 5
    test_fraction: float = 0.2
    folds: list | None = None
    strategy: str = "default"
    init_from: str | None = None
    freeze: list = dataclasses.field(default_factory=list)
    deterministic: bool = True
    resume: bool = True
    checkpoint_every: float = 30.0
    synthetic: dict = dataclasses.field(default_factory=lambda: {"subjects": 8, "clips_per_class": 4})
    verbose: int = 0
    baselines: bool = True
    seeds: list | None = None

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every name and range before anything is read or written; raise ValueError naming the bad field."""
        check_field_types(self)
        info = model_info(self.model)  # raises with the registered names
        if self.recipe is None:
            self.recipe = info.recipe  # the model spec's default recipe
        get_recipe(self.recipe, self.protocol, **(self.recipe_overrides or {}))
        self.recipe_overrides = coerce_overrides(self.recipe, self.recipe_overrides)
        protocol = get_protocol(self.protocol)  # raises naming the protocols
        try:
            self.precision = validate_precision(self.precision)
        except ValueError as err:
            raise ValueError(f"config precision: {err}") from None
        if self.strategy not in STRATEGIES:
            raise ValueError(f"config: unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if not isinstance(self.data, dict) or not self.data:
            raise ValueError(f"config: data must be a non-empty {{dataset: root}} mapping, got {self.data!r}")
        # "synthetic" stands for the synthetic layouts the protocol needs (CASME II; + SAMM, SMIC for MEGC)
        protocol.check_datasets([n for n in self.data if n != "synthetic"] + synthetic_layouts(protocol, self.data))
        if not self.checkpoint_every >= 0:
            raise ValueError(f"config: checkpoint_every must be >= 0 seconds, got {self.checkpoint_every!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"config: val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"config: test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if int(self.n_splits) < 2:
            raise ValueError(f"config: n_splits must be >= 2, got {self.n_splits!r}")
        split_data_options(self.data_options)  # raises naming an unknown option
        if self.on_mismatch not in MISMATCH_POLICIES:
            raise ValueError(f"config: on_mismatch must be one of {', '.join(MISMATCH_POLICIES)}, "
                             f"got {self.on_mismatch!r}")
        if isinstance(self.freeze, str):
            self.freeze = [self.freeze]
        if isinstance(self.folds, str):  # "01,02" as on the command line, not the characters "0", "1", ...
            self.folds = [f.strip() for f in self.folds.split(",") if f.strip()]
        if self.folds is not None:
            self.folds = [str(f) for f in self.folds]
        self.seeds = parse_seeds(self.seeds)
        check_field_values(self, info)

    @property
    def scheme(self) -> str | None:
        """The label scheme in effect (the protocol's default when ``labels`` is None, e.g. megc3)."""
        if self.labels is None:
            return get_protocol(self.protocol).default_labels
        return self.labels

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "config") -> "RunConfig":
        """Build from a mapping; unknown keys are an error naming ``source``."""
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a mapping of config fields, got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"{source}: unknown config field(s) {unknown}; fields: {sorted(fields)}")
        return cls(**d)


_NUMBER, _INT, _PATH = (numbers.Real,), numbers.Integral, (str, os.PathLike)  # numpy scalars count too
_TYPE_NAMES = {numbers.Real: "number", numbers.Integral: "int", os.PathLike: "path"}
# The accepted types of each field (None where it is allowed); fields not listed are checked by their owners.
_FIELD_TYPES = {
    "model": (str,), "data": (dict,), "labels": (str, None), "protocol": (str,), "recipe": (str, None),
    "recipe_overrides": (dict, None), "precision": (str,), "seed": (_INT,), "output_dir": _PATH,
    "input_shape": (list, tuple, None), "model_overrides": (dict, None), "data_options": (dict, None),
    "on_mismatch": (str,),
    "val_fraction": _NUMBER, "n_splits": (_INT,), "test_fraction": _NUMBER, "folds": (list, tuple, str, None),
    "strategy": (str,), "init_from": (*_PATH, None), "freeze": (list, tuple, str), "deterministic": (bool,),
    "resume": (bool,), "checkpoint_every": _NUMBER, "synthetic": (dict, None), "verbose": (_INT,), "baselines": (bool,),
    "seeds": (list, tuple, str, None),
}
_POSITIVE_SYNTHETIC = ("subjects", "clips_per_class")


def parse_seeds(seeds) -> list | None:
    """``seeds`` as a list of distinct integers in [0, 2**31), from a list or a ``"0,1,2"`` string.

    Args:
        seeds: None, a list/tuple of integers, or comma-separated integers.

    Returns:
        The list, or None.

    Raises:
        ValueError: an empty list, a repeated seed, or one that is not such an integer (named).

    Example:
        >>> parse_seeds("0, 1,2")
        [0, 1, 2]
    """
    if seeds is None:
        return None
    items = [s.strip() for s in seeds.split(",") if s.strip()] if isinstance(seeds, str) else list(seeds)
    out = []
    for s in items:
        try:
            ok = not isinstance(s, (bool, float)) and int(s) == int(str(s).strip()) and 0 <= int(s) < 2 ** 31
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"config seeds: expected integers in [0, 2**31), got {s!r} in {seeds!r}")
        out.append(int(s))
    if not out or len(set(out)) != len(out):
        raise ValueError(f"config seeds: expected one or more distinct seeds, got {seeds!r}")
    return out


def check_field_types(config: RunConfig) -> None:
    """Raise ValueError naming the first field whose value has the wrong type (a bool is not a number here).

    Args:
        config: the config to check.

    Example:
        >>> RunConfig(seed="zero")  # doctest: +SKIP
        ValueError: config seed: expected int, got 'zero' (str)
    """
    for name, kinds in _FIELD_TYPES.items():
        value = getattr(config, name, None)
        if value is None and None in kinds:
            continue
        types = tuple(k for k in kinds if k is not None)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            expected = " or ".join(_TYPE_NAMES.get(k) or getattr(k, "__name__", str(k)) for k in kinds)
            raise ValueError(f"config {name}: expected {expected}, got {value!r} ({type(value).__name__})")


def check_field_values(config: RunConfig, info) -> None:
    """The ranges no other owner checks: seed, verbose, model overrides, input shape, synthetic options, paths.

    Args:
        config: the config (types already checked); ``input_shape`` is normalised to a list.
        info: the model's :class:`~kerasmer.models.ModelInfo`.

    Raises:
        ValueError: naming the field, the value and what is expected.
    """
    if not 0 <= config.seed < 2 ** 31:
        raise ValueError(f"config seed: expected an integer in [0, 2**31), got {config.seed!r}")
    if config.verbose not in (0, 1, 2):
        raise ValueError(f"config verbose: expected 0, 1 or 2, got {config.verbose!r}")
    unknown = sorted(set(config.model_overrides or {}) - set(info.overrides))
    if unknown:
        raise ValueError(f"config model_overrides: {config.model!r} has no option(s) {unknown}; "
                         f"its options: {list(info.overrides) or 'none'}")
    if config.input_shape is not None:
        config.input_shape = list(check_input_shape(config.model, config.input_shape, source="config input_shape"))
    _check_image_channels(config, info)
    _check_synthetic(config.synthetic or {})
    if config.init_from is not None and not Path(config.init_from).is_file():
        raise ValueError(f"config init_from: no such file {config.init_from}")
    check_output_dir(config.output_dir)


def _check_image_channels(config: RunConfig, info) -> None:
    """Image inputs are built grey or RGB: say so before any data is read, not in the first fold.

    EmoResNet's paper input is LARNet's 32-channel feature map (32x32x32), which no reader makes.
    """
    shape = tuple(config.input_shape or info.input_shape)
    if info.modality in ("frame", "dynamic_image", "clip") and int(shape[-1]) not in (1, 3):
        example = ",".join(str(v) for v in (*shape[:-1], 3))
        raise ValueError(f"config input_shape: {config.model!r} takes {shape}, but kerasmer.data builds "
                         f"{info.modality} inputs with 1 (grey) or 3 (RGB) channels; set input_shape, "
                         f"e.g. --input-shape {example}")


def _check_synthetic(options: dict) -> None:
    """``synthetic:`` keys must be ``make_synthetic`` options; subjects and clips positive integers; values in range."""
    accepted = ["preset", "seed", "workers", *resolve_settings()]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"config synthetic: unknown option(s) {unknown}; make_synthetic accepts {accepted}")
    for key in _POSITIVE_SYNTHETIC:
        value = options.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"config synthetic: {key} must be a positive integer, got {value!r}")
    settings = {k: v for k, v in options.items() if k not in ("preset", "seed", "workers")}
    try:  # every preset name and value range, before any frame is drawn
        resolve_settings(options.get("preset", "demo"), **settings)
    except ValueError as err:
        raise ValueError(f"config synthetic: {str(err).removeprefix('make_synthetic: ')}") from None


SYNTHETIC_LAYOUTS = ("casme2", "samm", "smic")


def synthetic_layouts(protocol, data: dict) -> list:
    """The synthetic layouts ``data``'s ``"synthetic"`` entry stands for under ``protocol``.

    A protocol that names its datasets (``megc_composite``) gets those not given as real data; one
    that needs a number of datasets (``hde``: two) gets that many (CASME II, then SAMM, then SMIC);
    any other gets the CASME II layout.

    Args:
        protocol: a :class:`~kerasmer.evaluation.protocols.Protocol`.
        data: the config's ``{dataset: root}``.

    Returns:
        Layout names (empty when ``data`` has no ``"synthetic"``).

    Example:
        >>> synthetic_layouts(get_protocol("hde"), {"synthetic": None})
        ['casme2', 'samm']
    """
    if "synthetic" not in data:
        return []
    real = [n for n in data if n != "synthetic"]
    if protocol.datasets:
        return [n for n in protocol.datasets if n not in real] or ["casme2"]
    if protocol.n_datasets:
        return [n for n in SYNTHETIC_LAYOUTS if n not in real][:max(1, protocol.n_datasets - len(real))]
    return ["casme2"]


def check_output_dir(path) -> None:
    """Raise ValueError unless ``path`` is (or can be created as) a writable directory; creates nothing.

    Args:
        path: the run directory.

    Example:
        >>> check_output_dir("/proc/runs")  # doctest: +SKIP
        ValueError: config output_dir: /proc is not writable, so /proc/runs cannot be created
    """
    target = Path(path)
    if not str(path).strip():
        raise ValueError("config output_dir: expected a directory path, got an empty string")
    if target.exists() and not target.is_dir():
        raise ValueError(f"config output_dir: {target} exists and is not a directory")
    ancestor = target
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"config output_dir: {target} cannot be created, because {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        what = "is not writable" if ancestor == target else f"is not writable, so {target} cannot be created"
        raise ValueError(f"config output_dir: {ancestor} {what}")


def load_config(path: str | os.PathLike, **overrides) -> RunConfig:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file.

    Args:
        path: the file.
        **overrides: fields replacing the file's values (None values are ignored).

    Returns:
        A validated :class:`RunConfig`.

    Example:
        >>> cfg = load_config("runs/a/config.json", folds=["01"])  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_config: no such file {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        d = yaml.safe_load(text) or {}
    elif path.suffix.lower() == ".json":
        d = json.loads(text)
    else:
        raise ValueError(f"load_config: {path} must end in .yaml, .yml or .json")
    if not isinstance(d, dict):
        raise ValueError(f"load_config: {path} must hold a mapping of config fields")
    d.pop("environment", None)  # facts recorded by save_config, not settings
    d.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig.from_dict(d, source=str(path))


def save_config(config: RunConfig, run_dir: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write ``config.json`` (plus ``extra`` facts under ``"environment"``) atomically into ``run_dir``."""
    d = config.to_dict()
    if extra:
        d = {**d, "environment": extra}
    path = Path(run_dir) / "config.json"
    atomic_write_text(path, json.dumps(d, indent=2, default=str))
    return path
