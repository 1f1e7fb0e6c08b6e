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

import pandas as pd
import tensorflow as tf
# The only home of is/disable_op_determinism (tf.config.experimental has only enable).
from tensorflow.python.framework import config as tf_config

from kerasmer import data as kdata
from kerasmer.core.atomic import atomic_write_text
from kerasmer.core.lock import RunLock
from kerasmer.core.precision import precision_environment, precision_scope
from kerasmer.data.readers.labels import CLASS_ORDER, composite, map_labels
from kerasmer.data.synthetic import make_synthetic_sets
from kerasmer.evaluation.baselines import (
    BASELINES_FILE, read_baselines, records_of, run_baselines, score_records, write_baselines,
)
from kerasmer.evaluation.protocols import (
    add_group_column, check_fold_classes, check_published_counts, dataset_counts, get_protocol, make_folds,
)
from kerasmer.evaluation.report import write_report
from kerasmer.evaluation.results import (
    FoldResult, RunResult, fold_dirname, render_seeds_markdown, summarize, summarize_seeds,
)
from kerasmer.training.callbacks import FoldProgress, quiet_tf_logs
from kerasmer.training.config import RunConfig, load_config, save_config, synthetic_layouts
from kerasmer.training.distribute import get_strategy, run_directory
from kerasmer.training.recipes import get_recipe
from kerasmer.training.resume import FoldCheckpoint
from kerasmer.training.trainer import FoldFailed, FoldTrainer, TrainSpec

# Settings that may differ between the first start and a restart of the same run.
BASELINE_SIZE = (32, 32)  # the measurements (grey 32x32); the floor does not follow the model's input size
_RESTART_FREE = ("folds", "verbose", "resume", "checkpoint_every", "output_dir", "strategy", "baselines", "seeds")


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
            # one synthetic set per layout the protocol needs (CASME II; SAMM and SMIC-HS for the MEGC
            # composite and HDE), each in its dataset's vocabulary when a label scheme maps it
            opts = dict(config.synthetic or {})
            layouts = synthetic_layouts(get_protocol(config.protocol), config.data)
            mapped = bool(config.scheme) or len(layouts) + len(config.data) > 2  # several datasets: megc3
            roots.update(make_synthetic_sets(Path(root) if root else run_dir / "synthetic_data", layouts,
                                             opts.pop("preset", "demo"), seed=opts.pop("seed", config.seed),
                                             own_vocabulary=mapped, **opts))
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


def _compute_baselines(config: RunConfig, run_dir: Path, df, selected, label_column: str, class_names,
                       log) -> None:
    """The trivial baselines on the folds this invocation runs, into ``baselines.json`` (issue 12).

    Computed before any model trains, so even an interrupted run's report shows its floor; a few seconds
    per run (two frames per clip, one logistic regression per fold), so they are on by default.
    """
    if not config.baselines:
        (run_dir / BASELINES_FILE).unlink(missing_ok=True)  # a stale floor must not be reported as this run's
        return
    scores = run_baselines(df, [f for _, f in selected], label_column=label_column, class_names=class_names,
                           size=BASELINE_SIZE, face=config.data_options.get("face"))
    records = read_baselines(run_dir) if config.resume else {}  # folds run by earlier invocations stay
    write_baselines(run_dir, {**records, **records_of(scores)}, size=BASELINE_SIZE)
    log("baselines: " + ", ".join(f"{n} UF1 {s['uf1']:.3f}" for n, s in scores.items()))


def _baseline_scores(run_dir: Path, results, class_names) -> dict:
    """Pooled UF1/UAR of each baseline over the test clips of ``results``' folds (empty without baselines)."""
    scores = score_records(read_baselines(run_dir), class_names, [f.name for f in results])
    return {n: {"uf1": s["uf1"], "uar": s["uar"], "n": s["n"], "folds": s["folds"]} for n, s in scores.items()}


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
        progress: show fold-level progress with an ETA (a Keras bar on a terminal, one plain line per fold
            elsewhere: a log file, a pipe, a notebook).
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
    if config.seeds:
        raise ValueError(f"config seeds {config.seeds}: run one seed with run(); run_seeds(config) runs them all")
    recipe = get_recipe(config.recipe, config.protocol, **config.recipe_overrides)  # the protocol's variant
    run_dir = run_directory(config.strategy, config.output_dir)  # a non-chief worker: its own folder
    run_dir.mkdir(parents=True, exist_ok=True)
    # One process per run directory: a second one would interleave checkpoints (issue 11); a killed one's lock is
    # released by the kernel, so its restart resumes.
    # TensorFlow's INFO logs and its expected per-fold retracing warning are hidden for the run only (quiet_tf_logs).
    with RunLock(run_dir, log=log), run_environment(config) as policy, quiet_tf_logs():
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
        _compute_baselines(config, run_dir, df, selected, label_column, class_names, log)
        spec = TrainSpec(model=config.model, class_names=class_names, recipe=recipe, label_column=label_column,
                         input_shape=config.input_shape, model_overrides=config.model_overrides,
                         data_options=config.data_options, init_from=config.init_from, freeze=tuple(config.freeze),
                         verbose=config.verbose, checkpoint_every=float(config.checkpoint_every))
        trainer = FoldTrainer(spec, hooks=hooks, callbacks=callbacks or (), strategy=strategy, log=log)
        bar = FoldProgress(len(selected)) if progress else None  # Keras' bar on a terminal, plain lines elsewhere
        results, failed = [], {}
        for n, (i, fold) in enumerate(selected):
            outcome = _run_fold(trainer, config, df, i, fold, run_dir, log)
            if isinstance(outcome, str):
                failed[fold.name] = outcome
            else:
                results.append(outcome)
            if bar is not None:
                bar.update(n + 1, fold.name, _pooled_so_far(config, results, class_names))
        write_report(run_dir)
    return summarize(results, class_names, failed, run_dir=str(run_dir), protocol=config.protocol,
                     baselines=_baseline_scores(run_dir, results, class_names))


def _pooled_so_far(config: RunConfig, results, class_names) -> float | None:
    """The pooled UF1 of the folds done, for the progress line; None where the protocol never pools (HDE)."""
    if get_protocol(config.protocol).report_by == "fold":
        return None
    return summarize(results, class_names).pooled.get("uf1", float("nan")) if results else float("nan")


def seed_config(config: RunConfig, seed: int) -> RunConfig:
    """The config of one seed of ``config.seeds``: ``seed=seed`` into ``OUT/seed_<seed>/``, a run of its own.

    Example:
        >>> seed_config(RunConfig(seeds=[0, 1], output_dir="runs/a"), 1).output_dir  # doctest: +SKIP
        'runs/a/seed_1'
    """
    d = config.to_dict()
    d.update(seed=int(seed), seeds=None, output_dir=str(Path(config.output_dir) / f"seed_{int(seed)}"))
    return RunConfig.from_dict(d, source=f"config (seed {seed})")


def run_seeds(config, *, log=None, **kwargs) -> dict:
    """Run the whole protocol once per seed of ``config.seeds`` and summarise the seeds (issue 12).

    Each seed is an ordinary :func:`run` into ``OUT/seed_<n>/`` with ``seed=n`` (its own config, report and
    baselines; rerunning the command resumes each seed where it stopped).  With a synthetic dataset and no
    ``synthetic.seed``, each seed also draws its own synthetic set, as ``--seed n`` alone would.

    Args:
        config: a :class:`RunConfig` (or dict / file path) whose ``seeds`` is set.
        log: ``fn(str)`` for messages (default: print).
        **kwargs: passed on to :func:`run` (``callbacks``, ``hooks``, ``progress``).

    Returns:
        :func:`~kerasmer.evaluation.results.summarize_seeds`' summary, also written to ``OUT/seeds.json``
        and ``OUT/seeds.md``.

    Example:
        >>> summary = run_seeds(RunConfig(seeds=[0, 1, 2], output_dir="runs/s"))  # doctest: +SKIP
        >>> summary["mean_std"]["pooled"]["uf1"]  # doctest: +SKIP
    """
    config, log = _as_config(config), log or print
    if not config.seeds:
        raise ValueError("run_seeds: config seeds is empty; set e.g. seeds=[0, 1, 2] (kerasmer train --seeds 0,1,2)")
    results = {}
    for seed in config.seeds:
        one = seed_config(config, seed)
        log(f"seed {seed}: {one.output_dir}")
        results[seed] = run(one, log=log, **kwargs)
    summary = summarize_seeds(results)
    out = Path(config.output_dir)
    atomic_write_text(out / "seeds.json", json.dumps(summary, indent=2, default=float))
    atomic_write_text(out / "seeds.md", render_seeds_markdown(summary, config.model))
    return summary
