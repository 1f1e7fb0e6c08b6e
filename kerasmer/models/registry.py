"""Model registry, in the style of timm.

Every architecture registers a builder function with :func:`register_model`.
The registry stores what a user (and the shared test-suite) needs to know about
the model without building it: default input shape, input modality, default
number of classes, the paper and the paper's parameter count.

Example:
    >>> import kerasmer
    >>> kerasmer.list_models("atten*")          # doctest: +SKIP
    ['attention56', 'attention92']
    >>> model = kerasmer.build_model("learnet", num_classes=3)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
from typing import Any, Callable, Mapping

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
) -> Callable:
    """Decorator that registers a model builder under ``name``.

    The builder must accept ``num_classes`` and ``input_shape`` as keyword
    arguments; every other keyword argument it declares becomes an override
    that :func:`build_model` accepts.

    Example:
        >>> @register_model("tiny", input_shape=(32, 32, 3), modality="frame",
        ...                 num_classes=3, paper="none")   # doctest: +SKIP
        ... def tiny(*, num_classes, input_shape, width=8):
        ...     ...
    """
    if modality not in MODALITIES:
        raise ValueError(f"register_model({name!r}): modality must be one of {MODALITIES}, got {modality!r}")

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


def build_model(name: str, *, num_classes: int | None = None, input_shape: tuple | None = None, **overrides):
    """Build a registered model as a Keras functional model.

    Args:
        name: registry name (see :func:`list_models`).
        num_classes: number of output classes; defaults to the registry's.
        input_shape: input shape without batch axis; defaults to the registry's.
        **overrides: builder-specific options (see ``model_info(name).overrides``).

    Returns:
        A ``keras.Model``.

    Raises:
        ValueError: unknown model name (the message names the closest ones).
        TypeError: an override the builder does not accept (named in the message).

    Example:
        >>> model = kerasmer.build_model("learnet", num_classes=3)  # doctest: +SKIP
    """
    info = _lookup(name)
    unknown = [k for k in overrides if k not in info.overrides]
    if unknown:
        raise TypeError(
            f"build_model({name!r}) got unknown override(s) {', '.join(map(repr, unknown))}; "
            f"valid overrides: {', '.join(info.overrides) or 'none'}"
        )
    return info.builder(
        num_classes=int(num_classes) if num_classes is not None else info.num_classes,
        input_shape=tuple(input_shape) if input_shape is not None else info.input_shape,
        **overrides,
    )
