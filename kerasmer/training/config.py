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
import json
import os
from pathlib import Path

from kerasmer.core.atomic import atomic_write_text
from kerasmer.core.precision import validate_precision
from kerasmer.evaluation.protocols import get_protocol
from kerasmer.models import model_info
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
        val_fraction: share of each fold's training subjects used for validation.
        n_splits: ``"kfold"``: number of folds.
        test_fraction: ``"split"``: share of clips held out for testing.
        folds: run only these fold names (for fan-out jobs); None runs all.
        strategy: ``"default"``, ``"mirrored"`` or ``"multiworker"``.
        init_from: ``.keras`` / ``.weights.h5`` file to load weights from by layer name.
        freeze: shell-style patterns of layer names to freeze.
        deterministic: enable TensorFlow op determinism (needed for bit-equal resumes).
        resume: skip finished folds and resume the interrupted one from its checkpoint.
        synthetic: options for ``make_synthetic`` (``subjects``, ``clips_per_class``).
        verbose: Keras epoch progress (0, 1 or 2).
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
    val_fraction: float = 0.15
    n_splits: int = 5
    test_fraction: float = 0.2
    folds: list | None = None
    strategy: str = "default"
    init_from: str | None = None
    freeze: list = dataclasses.field(default_factory=list)
    deterministic: bool = True
    resume: bool = True
    synthetic: dict = dataclasses.field(default_factory=lambda: {"subjects": 8, "clips_per_class": 4})
    verbose: int = 0

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every name and range before anything is read or written; raise ValueError naming the bad field."""
        info = model_info(self.model)  # raises with the registered names
        if self.recipe is None:
            self.recipe = info.recipe  # the model spec's default recipe
        get_recipe(self.recipe, **(self.recipe_overrides or {}))
        self.recipe_overrides = coerce_overrides(self.recipe, self.recipe_overrides)
        protocol = get_protocol(self.protocol)  # raises naming the protocols
        self.precision = validate_precision(self.precision)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"config: unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if not isinstance(self.data, dict) or not self.data:
            raise ValueError(f"config: data must be a non-empty {{dataset: root}} mapping, got {self.data!r}")
        protocol.check_datasets(list(self.data))
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"config: val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"config: test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if int(self.n_splits) < 2:
            raise ValueError(f"config: n_splits must be >= 2, got {self.n_splits!r}")
        split_data_options(self.data_options)  # raises naming an unknown option
        if isinstance(self.freeze, str):
            self.freeze = [self.freeze]
        if self.folds is not None:
            self.folds = [str(f) for f in self.folds]

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
