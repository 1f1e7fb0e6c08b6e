"""``kerasmer.training.run(config)``: one training/evaluation run, resumable, behind ``kerasmer train``.

A run reads the dataset(s), maps labels, builds the protocol's folds, trains
each fold with honest validation-only selection, and writes into the run
directory::

    config.json              the resolved config (+ precision environment)
    run.json                 class names, protocol, every fold's name
    folds/<fold>/result.json a finished fold (its presence = fold done)
    folds/<fold>/failed.json a fold stopped by an error (e.g. NaN loss)
    folds/<fold>/checkpoint/ the interrupted fold's latest checkpoint
    tensorboard/<fold>/      TensorBoard scalars per epoch
    metrics.json, predictions.csv, report.md, confusion_matrix.png, curves_*.png

Restarting the same command skips finished folds and resumes the interrupted
fold from its checkpoint.

Example:
    >>> from kerasmer.training import RunConfig, run
    >>> result = run(RunConfig(model="learnet", data={"synthetic": None}, recipe="learnet",
    ...                        recipe_overrides={"epochs": 3}, input_shape=[32, 32, 3],
    ...                        output_dir="runs/demo"))  # doctest: +SKIP
    >>> print(result.fold_table())  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import keras
import pandas as pd
import tensorflow as tf
# The only home of is/disable_op_determinism (tf.config.experimental has only enable).
from tensorflow.python.framework import config as tf_config

from kerasmer import data as kdata
from kerasmer.core.atomic import atomic_write_text
from kerasmer.core.lock import RunLock
from kerasmer.core.precision import precision_environment, precision_scope
from kerasmer.data.readers.labels import CLASS_ORDER, composite, map_labels
from kerasmer.evaluation.protocols import (
    add_group_column, check_fold_classes, check_published_counts, dataset_counts, get_protocol, make_folds,
)
from kerasmer.evaluation.report import write_report
from kerasmer.evaluation.results import FoldResult, RunResult, fold_dirname, summarize
from kerasmer.training.config import RunConfig, load_config, save_config
from kerasmer.training.distribute import get_strategy, run_directory
from kerasmer.training.recipes import get_recipe
from kerasmer.training.resume import FoldCheckpoint
from kerasmer.training.trainer import FoldFailed, FoldTrainer, TrainSpec

# Settings that may differ between the first start and a restart of the same run.
_RESTART_FREE = ("folds", "verbose", "resume", "output_dir", "strategy")


def load_data(config: RunConfig, run_dir: Path) -> tuple[pd.DataFrame, list, str, dict]:
    """Read the config's dataset(s) and apply its label scheme.

    Returns:
        ``(df, class_names, label_column, summary)``.  Without a scheme the
        labels are the datasets' own ``emotion`` values (sorted); with one they
        are ``map_labels``' ``label`` column, in the scheme's class order.
        ``summary["mismatch"]`` holds each dataset's clips changed or dropped under
        ``config.on_mismatch`` (the readers' ``df.attrs["mismatch"]``).
    """
    roots = {}
    for name, root in config.data.items():
        if name == "synthetic":
            opts = dict(config.synthetic or {})
            roots["casme2"] = kdata.make_synthetic(Path(root) if root else run_dir / "synthetic_data",
                                             seed=opts.pop("seed", config.seed), **opts)
        else:
            if root is None or not Path(root).exists():
                raise FileNotFoundError(f"config data: the root of dataset {name!r} ({root!r}) does not exist")
            roots[name] = root
    summary: dict = {}
    if len(roots) > 1:
        df, summary = composite(list(roots), roots, scheme=config.scheme or "megc3",
                                options={n: {"on_mismatch": config.on_mismatch} for n in roots})
        label_column = "label"
    else:
        (name, root), = roots.items()
        df = kdata.read_dataset(name, root, on_mismatch=config.on_mismatch)
        mismatch = {name: df.attrs.get("mismatch")}
        label_column = "emotion"
        if config.scheme:
            df, summary = map_labels(df, config.scheme)
            label_column = "label"
        summary["mismatch"] = mismatch
    if len(df) == 0:
        raise ValueError(f"config data: no clips left after reading {list(roots)} with labels {config.scheme!r}")
    order = list(CLASS_ORDER.get(config.scheme, ())) if isinstance(config.scheme, str) else []
    counts = df[label_column].astype(str).value_counts()
    empty = [c for c in order if c not in counts.index]
    if empty:
        raise ValueError(f"label scheme {config.scheme!r} leaves class(es) {empty} empty in {list(roots)}: "
                         f"no clip maps to them (counts: {counts.to_dict()})")
    class_names = order or sorted(counts.index)
    return df.reset_index(drop=True), class_names, label_column, summary


def _check_restart(config: RunConfig, run_dir: Path) -> None:
    path = run_dir / "config.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    old.pop("environment", None)
    new = config.to_dict()
    diff = sorted(k for k in new if k not in _RESTART_FREE and json.dumps(old.get(k), sort_keys=True, default=str)
                  != json.dumps(new[k], sort_keys=True, default=str))
    if diff:
        raise ValueError(f"run directory {run_dir} holds a run with a different config (fields {diff}); "
                         "use another output_dir, or delete that directory to start over")


@contextlib.contextmanager
def run_environment(config: RunConfig):
    """Scope a run's precision policy and op determinism; both are restored afterwards.

    Yields:
        The resolved dtype policy name.
    """
    was_deterministic = tf_config.is_op_determinism_enabled()
    with precision_scope(config.precision) as policy:
        if config.deterministic:
            # Needed for resumed runs to equal uninterrupted ones; costs some speed.
            tf.config.experimental.enable_op_determinism()
        try:
            yield policy
        finally:
            if config.deterministic and not was_deterministic:
                tf_config.disable_op_determinism()


def plan_folds(config: RunConfig, df: pd.DataFrame, label_column: str, class_names: list) -> tuple[list, list]:
    """The protocol's folds over ``df`` and the ``(index, fold)`` pairs this invocation runs.

    Raises:
        ValueError: a class with no training clip in a fold, or an unknown fold name in ``config.folds``.
    """
    folds = make_folds(config.protocol, df, label_column=label_column, val_fraction=config.val_fraction,
                       n_splits=config.n_splits, test_fraction=config.test_fraction, seed=config.seed)
    check_fold_classes(df, folds, label_column=label_column, class_names=class_names)
    names = [f.name for f in folds]
    if config.folds is not None:
        unknown = [f for f in config.folds if f not in names]
        if unknown:
            raise ValueError(f"config folds: no fold named {unknown}; this protocol's folds are {names}")
    return folds, [(i, f) for i, f in enumerate(folds) if config.folds is None or f.name in config.folds]


def _write_run_files(config, run_dir, *, recipe, policy, strategy, df, class_names, label_column, summary,
                     folds, selected, annotation=None) -> None:
    """``config.json`` (with the precision environment) and ``run.json`` (what the report needs)."""
    env = precision_environment(probe_onednn=True)  # records the oneDNN version (issue: bf16 bug)
    env.update(strategy=config.strategy, replicas=int(strategy.num_replicas_in_sync))
    save_config(config, run_dir, extra=env)
    atomic_write_text(run_dir / "run.json", json.dumps({
        "class_names": class_names, "protocol": config.protocol, "label_column": label_column,
        "subject_dependent": get_protocol(config.protocol).subject_dependent, "folds": [f.name for f in folds],
        "selected_folds": [f.name for _, f in selected], "model": config.model, "recipe": recipe.to_dict(),
        "precision": policy, "labels": config.scheme, "label_summary": summary, "clips": int(len(df)),
        "subjects": int(df["fold_group"].nunique()), "dataset_counts": dataset_counts(df),
        "annotation": annotation,  # on_mismatch, the clips it changed or dropped, the preflight's verdict
    }, indent=2, default=str))


def _run_fold(trainer: FoldTrainer, config: RunConfig, df, i: int, fold, run_dir: Path, log):
    """Train one fold into ``folds/<fold>/``; returns its result, or the error message of a failed fold."""
    fold_dir = run_dir / "folds" / fold_dirname(fold.name)
    done = fold_dir / "result.json"
    if config.resume and done.is_file():
        log(f"fold {fold.name}: already finished, skipped")
        return FoldResult.from_json(json.loads(done.read_text(encoding="utf-8")))
    try:
        _, res = trainer.train(df, fold, seed=config.seed + i, fold_dir=fold_dir, resume=config.resume,
                               tensorboard_dir=run_dir / "tensorboard" / fold_dirname(fold.name))
    except FoldFailed as err:
        log(f"fold {fold.name} FAILED: {err}")
        atomic_write_text(fold_dir / "failed.json", json.dumps({"fold": fold.name, "error": str(err)}))
        return str(err)
    atomic_write_text(done, json.dumps(res.to_json(), default=float))
    (fold_dir / "failed.json").unlink(missing_ok=True)
    FoldCheckpoint(fold_dir / "checkpoint").clear()  # the result is on disk; the checkpoint is no longer needed
    return res


def _as_config(config) -> RunConfig:
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    if isinstance(config, dict):
        return RunConfig.from_dict(config)
    return config


def run(config, *, callbacks=None, hooks=(), progress: bool = True, log=None) -> RunResult:
    """Run a config: train and evaluate every fold, write the reports, return the result.

    This is kerasmer's one path from data to scores: ``kerasmer train``,
    ``kerasmer quickstart`` and the notebooks all come through here.

    Args:
        config: a :class:`RunConfig`, a dict of its fields, or a YAML/JSON path.
        callbacks: extra Keras callbacks for every ``fit`` (they see training and validation data only).
        hooks: :class:`~kerasmer.training.trainer.TrainerHook` objects for every fold
            (e.g. :class:`~kerasmer.training.trainer.KeepModel` to keep the last model).
        progress: show the fold-level progress bar (with ETA).
        log: ``fn(str)`` for messages (default: print).

    Returns:
        A :class:`~kerasmer.evaluation.results.RunResult` over the folds this
        invocation was asked to run (all of the config's ``folds``), including
        folds finished by an earlier, interrupted invocation.

    Raises:
        ValueError: unknown model, recipe or protocol; a class empty in a fold's
            training part; a run directory holding a different config.
        RunLockedError: another live process is running into ``output_dir`` (the message names it).

    Example:
        >>> result = run("run.yaml")  # doctest: +SKIP
        >>> result.pooled["uf1"], [f.evaluated_epoch for f in result.folds]  # doctest: +SKIP
    """
    config, log = _as_config(config), log or print
    recipe = get_recipe(config.recipe, config.protocol, **config.recipe_overrides)  # the protocol's variant
    run_dir = run_directory(config.strategy, config.output_dir)  # a non-chief worker: its own folder
    run_dir.mkdir(parents=True, exist_ok=True)
    # One process per run directory: a second one would interleave checkpoints (issue 11); a killed one's lock is
    # released by the kernel, so its restart resumes.
    with RunLock(run_dir, log=log), run_environment(config) as policy:
        if config.resume:
            _check_restart(config, run_dir)
        strategy = get_strategy(config.strategy)
        df, class_names, label_column, summary = load_data(config, run_dir)
        # Every frame of every clip (test subjects included) is checked before any model is built (issue 11).
        annotation = {"on_mismatch": config.on_mismatch, "mismatch": summary.pop("mismatch", {}),
                      "preflight": kdata.preflight(df, cache_dir=config.data_options.get("cache_dir"), log=log)}
        df = add_group_column(df)
        for warning in check_published_counts(config.protocol, dataset_counts(df)):  # report.md repeats it
            log(f"WARNING: {warning}")
        folds, selected = plan_folds(config, df, label_column, class_names)
        _write_run_files(config, run_dir, recipe=recipe, policy=policy, strategy=strategy, df=df,
                         class_names=class_names, label_column=label_column, summary=summary, folds=folds,
                         selected=selected, annotation=annotation)
        spec = TrainSpec(model=config.model, class_names=class_names, recipe=recipe, label_column=label_column,
                         input_shape=config.input_shape, model_overrides=config.model_overrides,
                         data_options=config.data_options, init_from=config.init_from, freeze=tuple(config.freeze),
                         verbose=config.verbose)
        trainer = FoldTrainer(spec, hooks=hooks, callbacks=callbacks or (), strategy=strategy, log=log)
        bar = (keras.utils.Progbar(len(selected), unit_name="fold", stateful_metrics=["pooled_uf1"])
               if progress else None)
        results, failed = [], {}
        for n, (i, fold) in enumerate(selected):
            outcome = _run_fold(trainer, config, df, i, fold, run_dir, log)
            if isinstance(outcome, str):
                failed[fold.name] = outcome
            else:
                results.append(outcome)
            if bar is not None:
                pooled_uf1 = summarize(results, class_names).pooled.get("uf1", float("nan")) if results else 0.0
                bar.update(n + 1, values=[("pooled_uf1", pooled_uf1)], finalize=n + 1 == len(selected))
        write_report(run_dir)
    return summarize(results, class_names, failed, run_dir=str(run_dir), protocol=config.protocol)
