"""Model registry, in the style of timm.

Every architecture registers a builder function with :func:`register_model`.
The registry stores what a user (and the shared test-suite) needs to know about
the model without building it: default input shape, input modality, default
number of classes, the paper and the paper's parameter count, and the model's
whole spec in the manner of timm's ``default_cfg``: how the data pipeline feeds
it (clip sampler, augmentation; :meth:`ModelInfo.input_options`) and its
paper's training recipe.  The data layer imports no model: importing this
module installs :meth:`ModelInfo.input_options` as its lookup, so
``kerasmer.data.make_dataset_for_model(df, name)`` works with a registry name.

Example:
    >>> import kerasmer
    >>> kerasmer.list_models("atten*")          # doctest: +SKIP
    ['attention56', 'attention92']
    >>> model = kerasmer.build_model("learnet", num_classes=3)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fnmatch
import inspect
import numbers
from typing import Any, Callable, Mapping

import keras

from kerasmer.core.precision import precision_scope
from kerasmer.data.pipeline.model_spec import set_model_spec_lookup

MODALITIES = ("frame", "clip", "dynamic_image", "flow")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model without building it.

    Attributes:
        name: registry name.
        builder: the builder function; called as
            ``builder(num_classes=..., input_shape=..., **overrides)``.
        input_shape: default input shape without the batch axis, e.g.
            ``(112, 112, 3)`` for images or ``(16, 112, 112, 3)`` (T, H, W, C)
            for clips.
        modality: one of ``"frame"``, ``"clip"``, ``"dynamic_image"``,
            ``"flow"``.
        num_classes: default number of classes.
        paper: short citation of the paper the model comes from.
        paper_params: the parameter count the paper gives, or ``None``.
        paper_params_config: keyword arguments for ``build_model`` under which
            the paper's count applies (e.g. ``{"num_classes": 1000}``).
        params_rtol: relative tolerance the test-suite asserts between our
            count and ``paper_params``; ``None`` when the count cannot be
            reconciled with the paper (``docs/architectures.md`` says why).
        test_input_shape: a small input shape used by the shared tests for
            forward and backward passes (full-size models are only built).
        class_names: default class names, if the paper fixes them.
        description: one line for ``list_models`` listings.
        sampler: clip models: the temporal sampler the paper's clips are made
            with (``"uniform"``: onset→apex→offset; ``"centered"``: consecutive
            frames around the apex; see ``kerasmer.data.make_input_builder``);
            ``None`` for other modalities.
        augment: training augmentation: ``None`` = the pipeline default
            (``kerasmer.data.DEFAULT_AUGMENT``), or a dict of settings.
        recipe: name of the paper's training recipe
            (``kerasmer.training.recipes.RECIPES``), the default of ``kerasmer train``.
        cam_layer: the layer Grad-CAM reads by default (``kerasmer explain``,
            :func:`cam_layer`); ``None``: the last layer with a 4-D or 5-D output
            before the head (the feature map global pooling or flattening reads).
    """

    name: str
    builder: Callable[..., Any]
    input_shape: tuple
    modality: str
    num_classes: int
    paper: str
    paper_params: int | None = None
    paper_params_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    params_rtol: float | None = None
    test_input_shape: tuple | None = None
    class_names: tuple | None = None
    description: str = ""
    sampler: str | None = None
    augment: Mapping[str, Any] | None = None
    recipe: str | None = None
    cam_layer: str | None = None

    def input_options(self, input_shape: tuple | None = None) -> dict:
        """The keyword options the data pipeline needs to feed this model (``kerasmer.data.make_dataset``).

        Args:
            input_shape: overrides the default input shape.

        Returns:
            ``{"modality", "input_shape"}``, plus ``"sampler"`` for clip models
            and ``"augment"`` when the model has its own augmentation.

        Example:
            >>> kerasmer.model_info("learnet").input_options()  # doctest: +SKIP
            {'modality': 'dynamic_image', 'input_shape': (112, 112, 3)}
        """
        shape = self.input_shape if input_shape is None else input_shape
        options: dict[str, Any] = {"modality": self.modality, "input_shape": tuple(int(v) for v in shape)}
        if self.modality == "clip":
            options["sampler"] = self.sampler
        if self.augment is not None:
            options["augment"] = dict(self.augment)
        return options

    @property
    def overrides(self) -> tuple:
        """Names of the keyword overrides the builder accepts."""
        params = inspect.signature(self.builder).parameters
        return tuple(p for p in params if p not in ("num_classes", "input_shape"))


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    input_shape: tuple,
    modality: str,
    num_classes: int,
    paper: str,
    paper_params: int | None = None,
    paper_params_config: Mapping[str, Any] | None = None,
    params_rtol: float | None = None,
    test_input_shape: tuple | None = None,
    class_names: tuple | None = None,
    description: str = "",
    sampler: str | None = None,
    augment: Mapping[str, Any] | None = None,
    recipe: str | None = None,
    cam_layer: str | None = None,
) -> Callable:
    """Decorator that registers a model builder under ``name``.

    The builder must accept ``num_classes`` and ``input_shape`` as keyword
    arguments; every other keyword argument it declares becomes an override
    that :func:`build_model` accepts.  ``sampler`` (clip models; default
    ``"uniform"``), ``augment`` and ``recipe`` are the paper's data and training
    settings (see :class:`ModelInfo`); ``cam_layer`` names Grad-CAM's default layer.

    Example:
        >>> @register_model("tiny", input_shape=(32, 32, 3), modality="frame",
        ...                 num_classes=3, paper="none")   # doctest: +SKIP
        ... def tiny(*, num_classes, input_shape, width=8):
        ...     ...
    """
    if modality not in MODALITIES:
        raise ValueError(f"register_model({name!r}): modality must be one of {MODALITIES}, got {modality!r}")
    if modality == "clip":
        sampler = sampler or "uniform"
    elif sampler is not None:
        raise ValueError(f"register_model({name!r}): sampler applies to clip models only, not {modality!r}")
    if augment is not None and not isinstance(augment, Mapping):
        raise TypeError(f"register_model({name!r}): augment must be None or a dict, got {type(augment).__name__}")

    def decorator(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"register_model: a model named {name!r} is already registered")
        params = inspect.signature(fn).parameters
        for required in ("num_classes", "input_shape"):
            if required not in params:
                raise TypeError(f"register_model({name!r}): builder {fn.__name__} must accept {required!r}")
        _REGISTRY[name] = ModelInfo(
            name=name,
            builder=fn,
            input_shape=tuple(input_shape),
            modality=modality,
            num_classes=int(num_classes),
            paper=paper,
            paper_params=paper_params,
            paper_params_config=dict(paper_params_config or {}),
            params_rtol=params_rtol,
            test_input_shape=tuple(test_input_shape) if test_input_shape else None,
            class_names=tuple(class_names) if class_names else None,
            description=description,
            sampler=sampler,
            augment=dict(augment) if augment is not None else None,
            recipe=recipe,
            cam_layer=cam_layer,
        )
        return fn

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``.

    Example:
        >>> kerasmer.list_models("*net*")  # doctest: +SKIP
        ['emoresnet', 'larnet', 'learnet', 'meranet18']
    """
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def _lookup(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Registered models: {', '.join(list_models())}"
        ) from None


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model (raises ValueError if unknown)."""
    return _lookup(name)


def cam_layer(model, name: str | None = None) -> str:
    """The name of the layer Grad-CAM reads in ``model`` by default.

    The model spec's ``cam_layer`` when the registered model names one and ``model`` has that layer; otherwise
    the generic default: the last layer, in build order, whose output is a 4-D ``(batch, H, W, C)`` or 5-D
    ``(batch, T, H, W, C)`` feature map, i.e. the one the head's global pooling or flattening reads
    (Selvaraju et al., Grad-CAM, ICCV 2017, §3: "the last convolutional layers").

    Args:
        model: a built ``keras.Model`` (a trained and reloaded one works).
        name: its registry name; default ``model.name`` (the builders name their models after themselves).
            An unregistered name is allowed: the generic default applies.

    Returns:
        The layer name, to pass to :func:`kerasmer.viz.grad_cam`.

    Raises:
        ValueError: ``model`` has no layer with a 4-D or 5-D output.

    Example:
        >>> cam_layer(kerasmer.build_model("learnet", input_shape=(32, 32, 3), num_classes=3))  # doctest: +SKIP
        'conv5'
    """
    info = _REGISTRY.get(name or model.name)
    names = {layer.name for layer in model.layers}
    if info is not None and info.cam_layer and info.cam_layer in names:
        return info.cam_layer
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = getattr(layer.output, "shape", None)  # a layer with several outputs has a list: skipped
        if shape is not None and len(shape) in (4, 5):
            return layer.name
    raise ValueError(f"cam_layer: model {model.name!r} has no layer with a 4-D or 5-D (feature map) output "
                     "for Grad-CAM to read")


def build_model(name: str, *, num_classes: int | None = None, input_shape: tuple | None = None,
                precision: str | None = None, **overrides):
    """Build a registered model as a Keras functional model.

    Args:
        name: registry name (see :func:`list_models`).
        num_classes: number of output classes; defaults to the registry's.
        input_shape: input shape without batch axis; defaults to the registry's.
        precision: build under this precision (``"auto"``, ``"float32"``,
            ``"mixed_float16"``, ``"mixed_bfloat16"`` or an alias, see
            :func:`kerasmer.core.precision.validate_precision`) without changing
            Keras' global dtype policy; None builds under the global policy.
        **overrides: builder-specific options (see ``model_info(name).overrides``).

    Returns:
        A ``keras.Model``.

    Raises:
        ValueError: unknown model name (the message names the closest ones), a bad ``precision``, a
            ``num_classes`` that is not a positive integer, or an ``input_shape`` of the wrong rank or type for the
            model's modality (:func:`check_input_shape`).
        TypeError: an override the builder does not accept (named in the message).

    Example:
        >>> model = kerasmer.build_model("learnet", num_classes=3)  # doctest: +SKIP
        >>> bf16 = kerasmer.build_model("learnet", precision="mixed_bfloat16")  # doctest: +SKIP
    """
    info = _lookup(name)
    unknown = [k for k in overrides if k not in info.overrides]
    if unknown:
        raise TypeError(
            f"build_model({name!r}) got unknown override(s) {', '.join(map(repr, unknown))}; "
            f"valid overrides: {', '.join(info.overrides) or 'none'}"
        )
    num_classes = check_num_classes(name, num_classes) if num_classes is not None else info.num_classes
    input_shape = check_input_shape(name, input_shape) if input_shape is not None else info.input_shape
    scope = precision_scope(precision) if precision is not None else contextlib.nullcontext()
    with scope:
        return info.builder(num_classes=num_classes, input_shape=input_shape, **overrides)


def _is_int(value) -> bool:
    # bool is an int to Python, but num_classes=True is a mistake, not one class.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_num_classes(name: str, num_classes, *, source: str | None = None) -> int:
    """Return ``num_classes`` as an int, or raise naming the argument.

    Args:
        name: the model's registry name, for the message.
        num_classes: a positive integer (a bool, a float such as 2.7 or a string is an error).
        source: who is asking, for the message (default ``build_model(<name>)``).

    Returns:
        ``int(num_classes)``.

    Raises:
        ValueError: not a positive integer.

    Example:
        >>> check_num_classes("learnet", 3)
        3
    """
    if not _is_int(num_classes) or num_classes < 1:
        raise ValueError(f"{source or f'build_model({name!r})'}: num_classes must be a positive integer (e.g. 3), "
                         f"got {num_classes!r} ({type(num_classes).__name__})")
    return int(num_classes)


def check_input_shape(name: str, input_shape, *, source: str | None = None) -> tuple:
    """Return ``input_shape`` as a tuple of ints after checking its rank and values for the model's modality.

    Args:
        name: the model's registry name; its entry's modality and default shape give the expected rank:
            ``(H, W, C)`` for frame / dynamic_image / flow models, ``(T, H, W, C)`` for clip models.
        input_shape: a list or tuple of positive integers, without the batch axis.
        source: who is asking, for the message (default ``build_model(<name>)``).

    Returns:
        The shape as a tuple of ints.

    Raises:
        ValueError: a string, a wrong rank, or a value that is not a positive integer; the message names the
            expected shape and the model's default.

    Example:
        >>> check_input_shape("learnet", [32, 32, 3])  # doctest: +SKIP
        (32, 32, 3)
    """
    info = _lookup(name)
    axes = "(frames, height, width, channels)" if info.modality == "clip" else "(height, width, channels)"
    expected = (f"{source or f'build_model({name!r})'}: input_shape must be {axes} for a {info.modality} model, "
                f"positive integers without the batch axis (default {info.input_shape})")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (list, tuple)):
        raise ValueError(f"{expected}; got {input_shape!r} ({type(input_shape).__name__})")
    if len(input_shape) != len(info.input_shape):
        raise ValueError(f"{expected}; got {tuple(input_shape)!r}, of rank {len(input_shape)}")
    bad = [v for v in input_shape if not _is_int(v) or v < 1]
    if bad:
        raise ValueError(f"{expected}; got {tuple(input_shape)!r}, whose {bad} are not positive integers")
    return tuple(int(v) for v in input_shape)


def _input_options(name: str, input_shape: tuple | None = None) -> dict:
    """The data pipeline's lookup: a registered model's :meth:`ModelInfo.input_options` by name."""
    return _lookup(name).input_options(input_shape)


set_model_spec_lookup(_input_options)  # the data layer cannot import the models: give it the lookup
