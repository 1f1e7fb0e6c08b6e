"""Leave-one-subject-out on an in-memory annotation table (the quickstart's API).

For each subject: train on the other subjects, choose the epoch on a
validation split made of whole *training* subjects, then predict the held-out
subject once with those weights.  Predictions are pooled across folds and
scored with scikit-learn (UF1, UAR, accuracy, confusion matrix).

This is a thin layer over :func:`kerasmer.training.fold.train_fold`, the same
fold trainer ``kerasmer train`` uses; :func:`kerasmer.training.run` adds the
other protocols, run directories, reports and resume.
"""

from __future__ import annotations

from typing import Callable

import keras
import pandas as pd

from kerasmer.evaluation import loso_folds
from kerasmer.training import fold as _fold
from kerasmer.training.recipes import Recipe
from kerasmer.training.results import FoldResult, LosoResult, RunResult, summarize

__all__ = ["FoldResult", "LosoResult", "RunResult", "make_recipe", "run_loso", "train_fold"]

_OPTIMIZERS = {"adam": dict(optimizer="adam"), "sgd": dict(optimizer="sgd", momentum=0.9),
               "sgd_nesterov": dict(optimizer="sgd", momentum=0.9, nesterov=True)}


def make_recipe(*, epochs: int = 30, batch_size: int = 16, optimizer: str = "adam", learning_rate: float = 1e-3,
                patience: int | None = None) -> Recipe:
    """A constant-learning-rate :class:`Recipe` from the quickstart's flags.

    Args:
        epochs, batch_size, learning_rate: training settings.
        optimizer: ``"adam"``, ``"sgd"`` (momentum 0.9) or ``"sgd_nesterov"``.
        patience: early-stopping patience on validation loss (None: train all epochs).

    Returns:
        A :class:`Recipe` named ``"custom"``.
    """
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"make_recipe: unknown optimizer {optimizer!r}; choose 'sgd', 'sgd_nesterov' or 'adam'")
    return Recipe("custom", "quickstart flags", learning_rate=learning_rate, batch_size=batch_size,
                  epochs=epochs, early_stopping_patience=patience, **_OPTIMIZERS[optimizer])


def train_fold(df: pd.DataFrame, fold, *, model_name: str, class_names, label_column: str = "emotion",
               input_shape=None, epochs: int = 30, batch_size: int = 16, optimizer: str = "adam",
               learning_rate: float = 1e-3, patience: int | None = None, seed: int = 0, verbose: int = 0,
               model_overrides: dict | None = None, recipe: Recipe | None = None, **kwargs):
    """Train one fold; the quickstart's flags or a ``recipe``.  See :func:`kerasmer.training.fold.train_fold`.

    Returns:
        ``(model, FoldResult)``.  The test rows are touched only by the final predict.
    """
    recipe = recipe or make_recipe(epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                                   learning_rate=learning_rate, patience=patience)
    return _fold.train_fold(df, fold, model_name=model_name, class_names=class_names, recipe=recipe,
                            label_column=label_column, input_shape=input_shape, seed=seed, verbose=verbose,
                            model_overrides=model_overrides, **kwargs)


def run_loso(df: pd.DataFrame, *, model_name: str, class_names, label_column: str = "emotion",
             precision: str = "float32", seed: int = 0, val_fraction: float = 0.15, progress: bool = True,
             on_fold_end: Callable | None = None, **train_kwargs):
    """Leave-one-subject-out over ``df`` with honest, validation-only model selection.

    Args:
        df: annotation DataFrame (``subject`` column defines the folds).
        model_name: registry name.
        class_names: class names in output order.
        label_column: column with the labels.
        precision: ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"`` or ``"auto"``.
        seed: base seed (fold ``i`` uses ``seed + i``).
        val_fraction: share of training subjects used for validation.
        progress: show a fold-level progress bar (with ETA).
        on_fold_end: optional ``fn(model, FoldResult)`` called after each fold
            (e.g. to export the last model).
        **train_kwargs: passed to :func:`train_fold` (epochs, batch_size, recipe, ...).

    Returns:
        ``(LosoResult, last_model)``.

    Example:
        >>> result, model = run_loso(df, model_name="learnet", class_names=["negative", "positive", "surprise"])  # doctest: +SKIP
        >>> print(result.fold_table())  # doctest: +SKIP
    """
    from kerasmer.training.precision import apply_precision

    class_names = list(class_names)
    unknown = sorted(set(df[label_column]) - set(class_names))
    if unknown:
        raise ValueError(f"run_loso: labels {unknown} in column {label_column!r} are not in class_names {class_names}")
    previous = keras.config.dtype_policy()
    apply_precision(precision)
    try:
        folds = loso_folds(df, val_fraction=val_fraction, seed=seed)
        bar = keras.utils.Progbar(len(folds), unit_name="fold", stateful_metrics=["pooled_uf1"]) if progress else None
        results, model = [], None
        for i, fold in enumerate(folds):
            model, res = train_fold(df, fold, model_name=model_name, class_names=class_names,
                                    label_column=label_column, seed=seed + i, log=lambda s: None, **train_kwargs)
            results.append(res)
            if on_fold_end is not None:
                on_fold_end(model, res)
            if bar is not None:
                bar.update(i + 1, values=[("pooled_uf1", summarize(results, class_names).pooled["uf1"])],
                           finalize=i + 1 == len(folds))
    finally:
        keras.config.set_dtype_policy(previous)
    return summarize(results, class_names), model
