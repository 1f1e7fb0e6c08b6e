"""What a model needs from the pipeline, looked up by name without :mod:`kerasmer.data` knowing any model.

The data layer sits below the models and imports nothing from them.  A model's
input needs (modality, input shape, clip sampler, training augmentation) are
declared once, where the model is registered; the model registry installs a
lookup here when it is imported (:func:`set_model_spec_lookup`), so that
:func:`model_input_options` and :func:`make_dataset_for_model` accept a
registry name.  Both also take the options themselves (a dict) or any object
with an ``input_options(input_shape=None)`` method (a registry entry).

The options are keyword arguments of :func:`~kerasmer.data.pipeline.tfdata.make_dataset`:

================ ==============================================================
``modality``     ``"frame"``, ``"clip"``, ``"dynamic_image"``, ``"flow"``, ...
``input_shape``  the input shape without the batch axis
``sampler``      clip models only: the temporal sampler (``"uniform"``, ``"centered"``, ...)
``augment``      only when the model's paper asks for other augmentation than
                 :data:`~kerasmer.data.pipeline.augment.DEFAULT_AUGMENT`: a dict of settings
================ ==============================================================
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import pandas as pd

from kerasmer.data.pipeline.tfdata import make_dataset

OPTION_KEYS = ("modality", "input_shape", "sampler", "augment")
_MODEL_SPECS: Callable[..., Mapping] | None = None
"""``fn(name, input_shape=None) -> options``, installed by the model registry; ``None`` before."""


def set_model_spec_lookup(fn: Callable[..., Mapping] | None):
    """Install the function that turns a model name into its pipeline options.

    Args:
        fn: ``fn(name, input_shape=None) -> dict`` of :data:`OPTION_KEYS`, raising
            ``ValueError`` for an unknown name; ``None`` removes the lookup.

    Returns:
        The lookup installed before (so a caller can put it back).

    Example:
        >>> previous = set_model_spec_lookup(lambda name, input_shape=None: {"modality": "frame",
        ...                                  "input_shape": input_shape or (64, 64, 3)})
        >>> model_input_options("anything")
        {'modality': 'frame', 'input_shape': (64, 64, 3)}
        >>> _ = set_model_spec_lookup(previous)
    """
    global _MODEL_SPECS
    if fn is not None and not callable(fn):
        raise TypeError(f"set_model_spec_lookup: expected a callable or None, got {type(fn).__name__}")
    previous, _MODEL_SPECS = _MODEL_SPECS, fn
    return previous


def model_input_options(model, input_shape=None) -> dict:
    """The pipeline options (``modality``, ``input_shape``, and ``sampler``/``augment`` where set) of a model.

    Args:
        model: a registered model's name, an object with an
            ``input_options(input_shape=None)`` method (a registry entry), or
            the options dict itself.
        input_shape: overrides the model's default input shape.

    Returns:
        A new dict of keyword arguments for :func:`~kerasmer.data.pipeline.tfdata.make_dataset`.

    Raises:
        ValueError: unknown model name (from the registry), or options without
            ``modality``/``input_shape`` or with unknown keys.
        RuntimeError: a name given but no lookup installed (``import kerasmer`` installs it).
        TypeError: ``model`` is none of the above.

    Example:
        >>> model_input_options("a registered model")  # doctest: +SKIP
        {'modality': 'dynamic_image', 'input_shape': (112, 112, 3)}
        >>> model_input_options({"modality": "clip", "input_shape": (8, 64, 64, 3), "sampler": "centered"})
        {'modality': 'clip', 'input_shape': (8, 64, 64, 3), 'sampler': 'centered'}
    """
    if isinstance(model, Mapping):
        options = dict(model)
        what = "the options given"
    elif hasattr(model, "input_options"):
        options = dict(model.input_options(input_shape))
        what = f"model {getattr(model, 'name', model)!r}"
    elif isinstance(model, str):
        if _MODEL_SPECS is None:
            raise RuntimeError(f"model_input_options({model!r}): no model lookup is installed; `import kerasmer` "
                               "installs the registry's, or pass the options dict or an object with "
                               "input_options()")
        options = dict(_MODEL_SPECS(model, input_shape))
        what = f"model {model!r}"
    else:
        raise TypeError("model_input_options: model must be a registered name, an object with "
                        f"input_options() or a dict of options, got {type(model).__name__}")
    missing = [k for k in ("modality", "input_shape") if k not in options]
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if missing or unknown:
        raise ValueError(f"model_input_options: {what} lack {missing} or have unknown keys {unknown}; "
                         f"the keys are {OPTION_KEYS}")
    if input_shape is not None:
        options["input_shape"] = input_shape
    options["input_shape"] = tuple(int(v) for v in options["input_shape"])
    return options


def make_dataset_for_model(df: pd.DataFrame, model, *, class_names: Sequence[str], input_shape=None, **kwargs):
    """:func:`~kerasmer.data.pipeline.tfdata.make_dataset` with a model's modality, input shape, sampler and augmentation.

    Args:
        df: rows of a reader's DataFrame.
        model: as for :func:`model_input_options` (a registry name, a registry
            entry or an options dict).
        class_names: class order of the one-hot labels.
        input_shape: overrides the model's default input shape.
        **kwargs: any other ``make_dataset`` option; ``sampler`` and ``augment``
            given here override the model's.  The model's own augmentation
            applies to training sets (``training=True``) only.

    Returns:
        The ``tf.data.Dataset`` of ``make_dataset``.

    Raises:
        ValueError: unknown model (the message names close ones).
        TypeError: ``modality`` given (it comes from the model).

    Example:
        >>> ds = make_dataset_for_model(train_df, "a registered model",
        ...                             class_names=["negative", "positive", "surprise"], training=True)  # doctest: +SKIP
    """
    if "modality" in kwargs:
        name = model if isinstance(model, str) else getattr(model, "name", "given")
        raise TypeError(f"make_dataset_for_model: modality comes from model {name!r}'s registry entry; "
                        "call make_dataset to choose another")
    options = model_input_options(model, input_shape)
    if "sampler" in kwargs:
        options["sampler"] = kwargs.pop("sampler")
    model_augment = options.pop("augment", None)
    if "augment" not in kwargs and kwargs.get("training", False) and model_augment is not None:
        options["augment"] = model_augment  # a settings dict augments even evaluation sets: training only
    return make_dataset(df, class_names=class_names, **options, **kwargs)


__all__ = ["OPTION_KEYS", "make_dataset_for_model", "model_input_options", "set_model_spec_lookup"]
