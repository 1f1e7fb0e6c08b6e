"""Reports of a run, rebuilt from the run directory alone (``kerasmer evaluate``).

:func:`write_report` reads the finished folds' ``result.json`` files of one or
more run directories (fan-out jobs: ``--folds`` in separate directories),
pools their predictions and writes ``metrics.json``, ``predictions.csv``,
``report.md``, ``confusion_matrix.png`` and ``training_curves.png``.  Reports
are written atomically.

Scores: *pooled* metrics are computed over all folds' predictions together (UF1
and UAR as in MEGC); *mean ± std across folds* is reported separately and
labelled as such.  Every fold states the epoch whose weights were evaluated.
The protocol table says what the headline is: ``megc_composite`` adds each
dataset's UF1/UAR beside the composite's (as MEGC 2019 reports them), HDE lists
each direction on its own with no pooled score, and a composite whose size
differs from the published one gets a warning at the top of ``report.md``.

Example:
    >>> print(write_report("runs/learnet-casme2"))  # doctest: +SKIP
    >>> write_report("runs/merged", sources=["runs/job1", "runs/job2"])  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from kerasmer.core.atomic import atomic_save_figure, atomic_write_text
from kerasmer.evaluation.baselines import read_baselines, score_records
from kerasmer.evaluation.metrics import compute_metrics, mean_std_across_folds
from kerasmer.evaluation.protocols import check_published_counts, get_protocol
from kerasmer.evaluation.results import fold_dirname, per_dataset_scores, predictions_frame, read_fold_results
from kerasmer.viz.plots import plot_confusion_matrix, plot_training_curves

_SAME = ("class_names", "protocol", "label_column", "model", "labels")


def load_runs(run_dirs) -> dict:
    """Read and merge the results of one or more run directories.

    Returns:
        ``{"run": run.json of the first directory, "folds": [FoldResult], "failed": {...},
        "missing": [fold names planned but neither finished nor failed], "runs": [dirs]}``.

    Raises:
        FileNotFoundError: a directory without ``run.json``.
        ValueError: runs that disagree on classes/protocol/model, or a fold present twice.
    """
    run_dirs = [Path(d) for d in ([run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else run_dirs)]
    if not run_dirs:
        raise ValueError("load_runs: no run directory given")
    first, folds, failed, seen, planned = None, [], {}, {}, []
    for d in run_dirs:
        meta_path = d / "run.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{d}: not a kerasmer run directory (no run.json)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if first is None:
            first = meta
        for key in _SAME:
            if meta.get(key) != first.get(key):
                raise ValueError(f"cannot merge {d} with {run_dirs[0]}: {key} differs "
                                 f"({meta.get(key)!r} vs {first.get(key)!r})")
        planned += [f for f in meta.get("selected_folds", meta["folds"]) if f not in planned]
        fr, fl = read_fold_results(d)
        for f in fr:
            if f.name in seen:
                raise ValueError(f"fold {f.name!r} is in both {seen[f.name]} and {d}; merge each fold once")
            seen[f.name] = d
            folds.append(f)
        failed.update(fl)
    failed = {k: v for k, v in failed.items() if k not in seen}  # a later job may have finished it
    order = {name: i for i, name in enumerate(first["folds"])}
    folds.sort(key=lambda f: order.get(f.name, len(order)))
    missing = [f for f in planned if f not in seen and f not in failed]
    return {"run": first, "folds": folds, "failed": failed, "missing": missing, "runs": [str(d) for d in run_dirs],
            "baselines": read_baselines(run_dirs)}  # each fold's baseline predictions, pooled like the model's


def compute_report(merged: dict) -> dict:
    """The content of ``metrics.json`` for merged runs (see :func:`load_runs`).

    The headline follows the protocol's ``report_by``: ``pooled`` over all folds (``None`` for HDE,
    whose two directions are separate results listed under ``directions``), ``per_dataset`` for
    ``megc_composite``, and ``warnings`` when the data's size differs from the protocol's published one.

    Args:
        merged: what :func:`load_runs` returns.

    Returns:
        A JSON-serialisable dict.

    Example:
        >>> compute_report(load_runs("runs/megc"))["per_dataset"]["samm"]["uf1"]  # doctest: +SKIP
    """
    run, folds = merged["run"], merged["folds"]
    names, protocol = run["class_names"], run["protocol"]
    by_fold = get_protocol(protocol).report_by == "fold"
    pooled = (compute_metrics(np.concatenate([f.y_true for f in folds]), np.concatenate([f.y_pred for f in folds]),
                              names) if folds and not by_fold else None)
    return {
        "protocol": protocol,
        "subject_dependent": bool(run.get("subject_dependent")),
        "model": run["model"], "recipe": run.get("recipe"), "precision": run.get("precision"),
        "labels": run.get("labels"), "class_names": names, "runs": merged["runs"],
        "warnings": check_published_counts(protocol, run.get("dataset_counts")),
        "dataset_counts": run.get("dataset_counts"),
        "annotation": run.get("annotation"),  # clips changed/dropped by on_mismatch (issue 11)
        "pooled": pooled,
        "baselines": baseline_summary(merged.get("baselines") or {}, [f.name for f in folds], names),
        "per_dataset": per_dataset_scores(folds, names, protocol),
        "directions": {f.name: f.metrics for f in folds} if by_fold else {},
        "across_folds": {"label": "mean ± std of per-fold scores (not the pooled score)",
                         **(mean_std_across_folds([f.metrics for f in folds]) if folds else {})},
        "folds": [{
            "fold": f.name, "test_subjects": f.test_subjects, "val_subjects": f.val_subjects,
            "evaluated_epoch": f.evaluated_epoch, "selection": f.selection, "epochs_run": f.epochs_run,
            "epochs_planned": f.epochs_planned, "resumed_from_epoch": f.resumed_from_epoch,
            "seconds": round(f.seconds, 2), **{k: f.metrics[k] for k in ("n", "accuracy", "uf1", "uar", "war")},
            "per_class": f.metrics["per_class"], "confusion_matrix": f.metrics["confusion_matrix"],
            **({"transfer": f.transfer} if f.transfer else {}),
        } for f in folds],
        "failed_folds": merged["failed"],
        "missing_folds": merged["missing"],
    }


def baseline_summary(records: dict, fold_names: list, class_names: list) -> dict:
    """The trivial baselines' scores on the reported folds' test clips (``metrics.json["baselines"]``).

    Args:
        records: stored per-fold baseline predictions (:func:`kerasmer.evaluation.baselines.read_baselines`).
        fold_names: the folds the report scores the model on.
        class_names: class names, index-aligned.

    Returns:
        ``{"scores": {name: {"uf1", "uar", "n", "folds"}}, "folds_covered", "folds_reported"}``; the scores
        are pooled over the covered folds only, so they match the model's clips when all are covered.

    Example:
        >>> baseline_summary(read_baselines("runs/demo"), ["01", "02"], ["a", "b", "c"])["folds_covered"]  # doctest: +SKIP
        2
    """
    scores = score_records(records, class_names, fold_names)
    return {"scores": {n: {k: s[k] for k in ("uf1", "uar", "n", "folds")} for n, s in scores.items()},
            "folds_covered": sum(f in records for f in fold_names), "folds_reported": len(fold_names)}


def _write_floor(w, report: dict) -> None:
    """The model's UF1/UAR beside the trivial baselines' on the same test clips, in one small table."""
    b = report.get("baselines") or {}
    scores = b.get("scores") or {}
    if not scores:
        return
    w("Against trivial baselines on the same folds and test clips (majority class; logistic regression on the grey "
      "apex frame, and on |apex − onset|; `kerasmer.evaluation.baselines`):")
    w()
    if report.get("directions"):  # HDE: each direction on its own
        rows = [(report["model"], d, m) for d, m in report["directions"].items()]
        rows += [(n, d, s["folds"][d]) for n, s in scores.items() for d in report["directions"] if d in s["folds"]]
    else:
        rows = [(report["model"], "pooled", report["pooled"])] + [(n, "pooled", s) for n, s in scores.items()]
    w("| predictor | test clips | UF1 | UAR |")
    w("|---|---|---:|---:|")
    for name, part, m in rows:
        w(f"| {name} | {part} | {_fmt(m['uf1'])} | {_fmt(m['uar'])} |")
    w()
    if b["folds_covered"] < b["folds_reported"]:
        w(f"> The baselines cover {b['folds_covered']} of the {b['folds_reported']} reported folds (a run without "
          "them was merged), so their clips differ from the model's.")
        w()


def _fmt(v) -> str:
    return "–" if v is None or v != v else f"{v:.4f}"


def _write_intro(w, report: dict) -> None:
    """The honesty line, the title, the run's settings and any warning about the data's size."""
    protocol = report["protocol"]
    if report["subject_dependent"]:
        w(f"**SUBJECT-DEPENDENT evaluation (protocol `{protocol}`)**: clips of the same subjects are in training "
          "and test, which inflates scores; do not compare them with subject-independent results.")
    else:
        w(f"Subject-independent evaluation (protocol `{protocol}`): test subjects never influence training, "
          "early stopping, learning-rate schedules or the choice of epoch.")
    w()
    w(f"# kerasmer report: {report['model']} — {protocol}")
    w()
    for warning in report.get("warnings") or []:
        w(f"> **WARNING**: {warning}")
        w()
    recipe = report.get("recipe") or {}
    w(f"- recipe: `{recipe.get('name')}` ({recipe.get('paper', '')}); precision `{report.get('precision')}`; "
      f"labels `{report.get('labels') or 'dataset emotions'}`; classes {', '.join(report['class_names'])}")
    w(f"- folds evaluated: {len(report['folds'])}; failed: {len(report['failed_folds'])}; "
      f"not (yet) run: {len(report['missing_folds'])}")
    w("- evaluated weights: for every fold, those of the epoch with the lowest loss on *validation subjects* "
      "(training subjects held out from training), listed below")
    w()


def _write_score_rows(w, first: str, rows: dict) -> None:
    """A table of clips, accuracy, UF1, UAR and WAR, one row per ``{name: metrics}``."""
    w(f"| {first} | clips | accuracy | UF1 | UAR | WAR |")
    w("|---|---:|---:|---:|---:|---:|")
    for name, m in rows.items():
        w(f"| {name} | {m['n']} | {_fmt(m['accuracy'])} | {_fmt(m['uf1'])} | {_fmt(m['uar'])} | {_fmt(m['war'])} |")
    w()


def _write_class_tables(w, m: dict, names: list, what: str) -> None:
    """The per-class table (LARNet Table 4 form) and the confusion matrix of one set of scores."""
    w(f"## Per class ({what})")
    w()
    w("| class | precision | recall | F1-score | support |")
    w("|---|---:|---:|---:|---:|")
    for name, c in m["per_class"].items():
        w(f"| {name} | {_fmt(c['precision'])} | {_fmt(c['recall'])} | {_fmt(c['f1'])} | {c['support']} |")
    w()
    w(f"## Confusion matrix ({what}; rows true, columns predicted)")
    w()
    w("| true \\ pred | " + " | ".join(names) + " |")
    w("|---|" + "---:|" * len(names))
    for name, row in zip(names, m["confusion_matrix"]):
        w(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    w()


def _write_scores(w, report: dict) -> None:
    """The headline: each HDE direction on its own, or the pooled scores (and each dataset's)."""
    names, p, a = report["class_names"], report["pooled"], report["across_folds"]
    if report.get("directions"):
        w("## Each direction on its own (holdout-database evaluation: no pooled score)")
        w()
        _write_score_rows(w, "direction (train->test)", report["directions"])
        _write_floor(w, report)
        for name, m in report["directions"].items():
            _write_class_tables(w, m, names, name)
        w(" ".join(f"![confusion matrix {n}]({_confusion_png(n)})" for n in report["directions"])
          + "  ![training curves](training_curves.png)")
        w()
        return
    if p is None:
        w("No fold has finished yet.")
        return
    w("## Pooled over all folds' predictions" + (" and per dataset" if report.get("per_dataset") else ""))
    w()
    _write_score_rows(w, "test clips", {"all (pooled)": p, **report.get("per_dataset", {})})
    _write_floor(w, report)
    w(f"Mean ± std across folds (of per-fold scores, not the pooled score): " + ", ".join(
        f"{k} {a[k]['mean']:.4f} ± {a[k]['std']:.4f}" for k in ("accuracy", "uf1", "uar", "war") if k in a))
    w()
    _write_class_tables(w, p, names, "pooled")
    w("![confusion matrix](confusion_matrix.png)  ![training curves](training_curves.png)")
    w()


def _write_annotation_changes(w, annotation: dict | None) -> None:
    """The clips whose annotation the readers changed or dropped against their frames (``on_mismatch``)."""
    per_dataset = (annotation or {}).get("mismatch") or {}
    changed = [f"{name}: {c}" for name, m in per_dataset.items() for c in (m or {}).get("changed", [])]
    dropped = [f"{name}: {c}" for name, m in per_dataset.items() for c in (m or {}).get("dropped", [])]
    w("## Annotation versus frames")
    w()
    w(f"Policy `on_mismatch={annotation.get('on_mismatch', 'fix') if annotation else 'fix'}`; "
      f"{len(changed)} clip(s) changed, {len(dropped)} dropped.")
    w()
    for line in [f"- changed: {c}" for c in changed] + [f"- dropped: {d}" for d in dropped]:
        w(line)
    if changed or dropped:
        w()


def render_markdown(report: dict) -> str:
    """``report.md``: honesty line, warnings, headline scores, per-class table, confusion, folds.

    Args:
        report: what :func:`compute_report` returns.

    Returns:
        The Markdown text.

    Example:
        >>> print(render_markdown(compute_report(load_runs("runs/demo"))))  # doctest: +SKIP
    """
    out = io.StringIO()
    w = lambda s="": out.write(s + "\n")  # noqa: E731
    _write_intro(w, report)
    _write_scores(w, report)
    _write_annotation_changes(w, report.get("annotation"))
    if report["folds"]:
        w("## Folds")
        w()
        w("| fold | test subjects | clips | accuracy | UF1 | UAR | evaluated epoch | epochs run | selection |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for f in report["folds"]:
            subjects = ", ".join(f["test_subjects"][:4]) + (" …" if len(f["test_subjects"]) > 4 else "")
            w(f"| {f['fold']} | {subjects} | {f['n']} | {_fmt(f['accuracy'])} | {_fmt(f['uf1'])} | "
              f"{_fmt(f['uar'])} | {f['evaluated_epoch']} | {f['epochs_run']}/{f['epochs_planned']} | "
              f"{f['selection']} |")
        w()
    if report["failed_folds"]:
        w("## Failed folds")
        w()
        for name, msg in report["failed_folds"].items():
            w(f"- **{name}**: {msg}")
        w()
    if report["missing_folds"]:
        w(f"Not run yet: {', '.join(report['missing_folds'])}")
    return out.getvalue()


def _confusion_png(name: str) -> str:
    """The confusion-matrix figure of one HDE direction."""
    return f"confusion_matrix_{fold_dirname(name)}.png"


def write_report(run_dir, sources=None) -> str:
    """Recompute and write the report files into ``run_dir``.

    Args:
        run_dir: where the reports go.
        sources: run directories to merge (default: ``[run_dir]``).  Merging
            into a new directory copies the first source's ``run.json`` there.

    Returns:
        The Markdown report.

    Example:
        >>> print(write_report("runs/learnet-casme2"))  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    merged = load_runs(sources or [run_dir])
    run_dir.mkdir(parents=True, exist_ok=True)
    if sources and not (run_dir / "run.json").is_file():
        atomic_write_text(run_dir / "run.json", json.dumps(merged["run"], indent=2))
    report = compute_report(merged)
    md = render_markdown(report)
    atomic_write_text(run_dir / "metrics.json", json.dumps(report, indent=2, default=float))
    atomic_write_text(run_dir / "predictions.csv",
                      predictions_frame(merged["folds"], report["class_names"]).to_csv(index=False))
    atomic_write_text(run_dir / "report.md", md)
    title = f"{report['model']} — {report['protocol']}"
    # HDE's directions are separate results, so each gets its own confusion matrix; other protocols one pooled.
    matrices = ({_confusion_png(n): (m, f"{title} ({n})") for n, m in report["directions"].items()}
                if report["directions"] else
                {"confusion_matrix.png": (report["pooled"], f"{title} (pooled)")} if report["pooled"] else {})
    for filename, (m, figure_title) in matrices.items():
        atomic_save_figure(plot_confusion_matrix(m["confusion_matrix"], report["class_names"], title=figure_title),
                           run_dir / filename, dpi=110)
    if merged["folds"]:
        atomic_save_figure(plot_training_curves({f.name: f.history for f in merged["folds"]},
                                                selected={f.name: f.evaluated_epoch for f in merged["folds"]}),
                           run_dir / "training_curves.png", dpi=110)
    return md
