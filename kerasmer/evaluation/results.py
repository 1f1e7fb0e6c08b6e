"""Per-fold and per-run results, and their JSON form in the run directory.

A fold's result is written atomically to ``folds/<fold>/result.json`` when the
fold ends; its presence marks the fold as done (a restarted run skips it), and
``kerasmer evaluate`` rebuilds every report from these files alone.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kerasmer.evaluation.metrics import compute_metrics, mean_std_across_folds, metrics_by_group
from kerasmer.evaluation.protocols import get_protocol


@dataclasses.dataclass
class FoldResult:
    """Outcome of one fold.

    Attributes:
        name: fold id (the held-out subject for LOSO, ``A->B`` for HDE, ``k3`` for k-fold).
        test_subjects, val_subjects, train_subjects: the subjects of each part.
        clips: test clip ids, aligned with ``y_true``/``y_pred``/``probabilities``.
        clip_subjects: the subject of each test clip.
        y_true, y_pred: class indices.
        probabilities: (n, num_classes) softmax outputs.
        evaluated_epoch: 1-based epoch whose weights were evaluated.
        selection: how that epoch was chosen.
        epochs_run: epochs trained.
        history: per-epoch train and validation metrics (and the learning rate).
        seconds: wall time of the fold.
        metrics: the fold's own metrics.
        normalization: the per-channel (mean, std) fitted on the fold's training rows.
        epochs_planned: epochs the recipe asked for.
        train_clips, val_clips: ``subject/clip`` ids of the training and validation parts (for audits).
        transfer: what ``--init-from`` / ``--freeze`` did, if used.
        resumed_from_epoch: the checkpoint epoch this fold resumed from (0: fresh).
        clip_datasets: the dataset of each test clip (per-dataset scores of composites); empty in
            results written before it was recorded.
    """

    name: str
    test_subjects: list
    val_subjects: list
    train_subjects: list
    clips: list
    clip_subjects: list
    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray
    evaluated_epoch: int
    selection: str
    epochs_run: int
    history: dict
    seconds: float
    metrics: dict = dataclasses.field(default_factory=dict)
    normalization: tuple | None = None
    epochs_planned: int | None = None
    train_clips: list = dataclasses.field(default_factory=list)
    val_clips: list = dataclasses.field(default_factory=list)
    transfer: dict | None = None
    resumed_from_epoch: int = 0
    clip_datasets: list = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["y_true"] = [int(v) for v in self.y_true]
        d["y_pred"] = [int(v) for v in self.y_pred]
        d["probabilities"] = np.asarray(self.probabilities, dtype=float).round(7).tolist()
        if self.normalization is not None:
            d["normalization"] = [np.asarray(a, dtype=float).tolist() for a in self.normalization]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "FoldResult":
        d = dict(d)
        d["y_true"] = np.asarray(d["y_true"], dtype=int)
        d["y_pred"] = np.asarray(d["y_pred"], dtype=int)
        d["probabilities"] = np.asarray(d["probabilities"], dtype=float)
        if d.get("normalization") is not None:
            d["normalization"] = tuple(np.asarray(a, dtype="float32") for a in d["normalization"])
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


@dataclasses.dataclass
class RunResult:
    """Outcome of a run: finished folds, pooled metrics, and failed folds.

    Attributes:
        class_names: class names in output order.
        folds: :class:`FoldResult` of every finished fold, in fold order.
        pooled: metrics over the predictions of all folds pooled (UF1 as in MEGC).
        across_folds: mean ± std of per-fold scores (labelled separately).
        failed: ``{fold: message}`` for folds stopped by an error (e.g. NaN loss).
        run_dir: the run directory (None for in-memory runs).
        protocol: the protocol run.
        per_dataset: ``{dataset: metrics}`` when the protocol reports each dataset (``megc_composite``).
        baselines: ``{name: {"uf1", "uar", "n", "folds"}}`` of the trivial baselines
            (:mod:`kerasmer.evaluation.baselines`) on the same folds' test clips; empty when switched off.
    """

    class_names: list
    folds: list
    pooled: dict
    across_folds: dict
    failed: dict = dataclasses.field(default_factory=dict)
    run_dir: str | None = None
    protocol: str = "loso"
    per_dataset: dict = dataclasses.field(default_factory=dict)
    baselines: dict = dataclasses.field(default_factory=dict)

    def floor_table(self, model: str = "model") -> str:
        """The model's UF1/UAR above the trivial baselines' on the same test clips ('' without baselines).

        Pooled scores; for HDE (no pooled score) each direction's.

        Example:
            >>> print(result.floor_table("learnet"))  # doctest: +SKIP
                 predictor    UF1    UAR
                   learnet  0.990  0.990
                  majority  0.167  0.333
        """
        if not self.baselines or not self.folds:
            return ""
        if self.pooled:
            rows = {model: self.pooled, **self.baselines}
            return "\n".join([f"{'predictor':>20} {'UF1':>6} {'UAR':>6}"]
                             + [f"{n:>20} {m['uf1']:>6.3f} {m['uar']:>6.3f}" for n, m in rows.items()])
        lines = [f"{'predictor':>20} {'direction':>16} {'UF1':>6} {'UAR':>6}"]
        for f in self.folds:
            rows = {model: f.metrics, **{n: b["folds"].get(f.name) for n, b in self.baselines.items()}}
            lines += [f"{n:>20} {f.name:>16} {m['uf1']:>6.3f} {m['uar']:>6.3f}" for n, m in rows.items() if m]
        return "\n".join(lines)

    def predictions_frame(self) -> pd.DataFrame:
        """One row per test clip: fold, subject, clip, true and predicted labels, probabilities."""
        return predictions_frame(self.folds, self.class_names)

    def fold_table(self) -> str:
        """A plain-text per-fold table with the headline scores underneath.

        The headline follows the protocol's ``report_by``: pooled scores (and, for
        ``megc_composite``, each dataset's), or, for HDE, none: each fold is one direction.
        """
        def row(name, m):
            return f"{name:>14} {m['n']:>4d} {m['accuracy']:>6.3f} {m['uf1']:>6.3f} {m['uar']:>6.3f}"

        lines = [f"{'fold':>14} {'n':>4} {'acc':>6} {'uf1':>6} {'uar':>6} {'epoch':>6} {'sec':>6}"]
        for f in self.folds:
            lines.append(f"{row(f.name, f.metrics)} {f.evaluated_epoch:>6d} {f.seconds:>6.1f}")
        for name, msg in self.failed.items():
            lines.append(f"{name:>14} FAILED: {msg}")
        if self.folds and get_protocol(self.protocol).report_by == "fold":
            lines.append("each fold is a separate result (one direction); there is no pooled score")
        elif self.folds:
            lines.append(row("pooled", self.pooled))
            lines += [row(name, m) for name, m in self.per_dataset.items()]
            a = self.across_folds
            lines.append(f"{'mean±std':>14} {'':>4} {a['accuracy']['mean']:.3f}±{a['accuracy']['std']:.3f} "
                         f"(per-fold mean, not the pooled score)")
        return "\n".join(lines)


def predictions_frame(folds, class_names) -> pd.DataFrame:
    """The ``predictions.csv`` table of a list of :class:`FoldResult`."""
    rows = []
    for f in folds:
        for clip, subj, t, p, prob in zip(f.clips, f.clip_subjects, f.y_true, f.y_pred, f.probabilities):
            row = {"fold": f.name, "subject": subj, "clip": clip, "true": class_names[t],
                   "pred": class_names[p], "selected_epoch": f.evaluated_epoch}
            row.update({f"p_{c}": float(v) for c, v in zip(class_names, prob)})
            rows.append(row)
    cols = ["fold", "subject", "clip", "true", "pred", "selected_epoch"] + [f"p_{c}" for c in class_names]
    return pd.DataFrame(rows, columns=cols)


def per_dataset_scores(folds, class_names, protocol: str) -> dict:
    """Each dataset's scores over its test clips, for protocols that report them (``megc_composite``).

    Args:
        folds: :class:`FoldResult` objects.
        class_names: class names in output order.
        protocol: the protocol run; its ``report_by`` must be ``"dataset"``.

    Returns:
        ``{dataset: metrics}``; empty for other protocols, or when a fold has no ``clip_datasets``
        (results written before they were recorded).

    Example:
        >>> per_dataset_scores(result.folds, result.class_names, "megc_composite")["samm"]["uf1"]  # doctest: +SKIP
    """
    if get_protocol(protocol).report_by != "dataset" or not folds or not all(f.clip_datasets for f in folds):
        return {}
    return metrics_by_group(np.concatenate([f.y_true for f in folds]), np.concatenate([f.y_pred for f in folds]),
                            np.concatenate([np.asarray(f.clip_datasets, dtype=str) for f in folds]), class_names)


def summarize(folds, class_names, failed=None, protocol: str = "loso", **kw) -> RunResult:
    """Pool the folds' predictions into a :class:`RunResult`.

    Args:
        folds: finished :class:`FoldResult` objects.
        class_names: class names in output order.
        failed: ``{fold: message}`` of failed folds.
        protocol: the protocol run: HDE (``report_by="fold"``) gets no pooled score, ``megc_composite``
            gets each dataset's scores.
        **kw: other :class:`RunResult` fields (``run_dir``).

    Returns:
        A :class:`RunResult`.

    Example:
        >>> summarize(folds, ["negative", "positive", "surprise"]).pooled["uf1"]  # doctest: +SKIP
    """
    class_names = list(class_names)
    pooled, across = {}, {}
    if folds:
        if get_protocol(protocol).report_by != "fold":  # HDE's directions are never pooled
            pooled = compute_metrics(np.concatenate([f.y_true for f in folds]),
                                     np.concatenate([f.y_pred for f in folds]), class_names)
        across = mean_std_across_folds([f.metrics for f in folds])
    return RunResult(class_names, list(folds), pooled, across, dict(failed or {}), protocol=protocol,
                     per_dataset=per_dataset_scores(folds, class_names, protocol), **kw)


def fold_dirname(name: str) -> str:
    """A directory-safe version of a fold name (``samm_006`` stays, ``casme2->samm`` -> ``casme2_to_samm``)."""
    name = str(name).replace("->", "_to_")
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def read_fold_results(run_dir) -> tuple[list, dict]:
    """Read ``folds/*/result.json`` and ``folds/*/failed.json`` of a run directory.

    Returns:
        ``(fold_results, failed)``.

    Raises:
        ValueError: a damaged (truncated, not JSON, missing fields) record; the message names the file.
    """
    folds, failed = [], {}
    base = Path(run_dir) / "folds"
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        if (d / "result.json").is_file():
            folds.append(_read_record(d / "result.json", FoldResult.from_json))
        elif (d / "failed.json").is_file():
            fold, error = _read_record(d / "failed.json", lambda info: (info["fold"], info["error"]))
            failed[fold] = error
    return folds, failed


def _read_record(path: Path, parse):
    """``parse(json of path)``, with any damage reported as a ValueError that names ``path``."""
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise ValueError(f"{path}: damaged fold record ({detail}); delete it to run that fold again, or restore "
                         "it from a copy") from None


def _mean_std(values) -> dict:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of per-seed scores."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "seeds": int(len(v))}


def summarize_seeds(results: dict) -> dict:
    """Each seed's headline UF1/UAR and their mean ± std over seeds (``seeds.json``).

    Args:
        results: ``{seed: RunResult}`` of the same config run once per seed.

    Returns:
        ``{"seeds": {seed: {"run_dir", "folds", "failed", "scores", "baselines"}}, "mean_std": {headline: {uf1,
        uar}}, "baselines_mean_std": {name: {uf1, uar}}, "std": what std means}``.  The headline is ``pooled``,
        or, for HDE (no pooled score), each direction.

    Example:
        >>> summarize_seeds({0: r0, 1: r1})["mean_std"]["pooled"]["uf1"]["mean"]  # doctest: +SKIP
    """
    per_seed = {}
    for seed, r in results.items():
        headline = {"pooled": r.pooled} if r.pooled else {f.name: f.metrics for f in r.folds}
        per_seed[str(seed)] = {
            "run_dir": r.run_dir, "folds": len(r.folds), "failed": len(r.failed),
            "scores": {k: {"uf1": m["uf1"], "uar": m["uar"]} for k, m in headline.items()},
            "baselines": {n: {"uf1": b["uf1"], "uar": b["uar"]} for n, b in r.baselines.items()}}

    def spread(field):
        keys = list(dict.fromkeys(k for s in per_seed.values() for k in s[field]))
        return {k: {m: _mean_std([s[field][k][m] for s in per_seed.values() if k in s[field]])
                    for m in ("uf1", "uar")} for k in keys}

    return {"seeds": per_seed, "mean_std": spread("scores"), "baselines_mean_std": spread("baselines"),
            "std": "sample standard deviation over seeds (ddof=1)"}


def render_seeds_markdown(summary: dict, model: str = "model") -> str:
    """``seeds.md``: one row per seed and headline, then mean ± std, and the baselines' mean ± std.

    Example:
        >>> print(render_seeds_markdown(summarize_seeds(results), "learnet"))  # doctest: +SKIP
    """
    lines = [f"# {model}: one run per seed", "", "| seed | score | UF1 | UAR | report |", "|---|---|---:|---:|---|"]
    for seed, s in summary["seeds"].items():
        lines += [f"| {seed} | {k} | {m['uf1']:.4f} | {m['uar']:.4f} | seed_{seed}/report.md |"
                  for k, m in s["scores"].items()]
    lines += [f"| mean ± std | {k} | {m['uf1']['mean']:.4f} ± {m['uf1']['std']:.4f} | "
              f"{m['uar']['mean']:.4f} ± {m['uar']['std']:.4f} | |" for k, m in summary["mean_std"].items()]
    if summary["baselines_mean_std"]:
        lines += ["", "Trivial baselines on the same folds (mean ± std over seeds):", "",
                  "| baseline | UF1 | UAR |", "|---|---:|---:|"]
        lines += [f"| {n} | {m['uf1']['mean']:.4f} ± {m['uf1']['std']:.4f} | "
                  f"{m['uar']['mean']:.4f} ± {m['uar']['std']:.4f} |" for n, m in summary["baselines_mean_std"].items()]
    lines += ["", f"std: {summary['std']}.", ""]
    return "\n".join(lines)
