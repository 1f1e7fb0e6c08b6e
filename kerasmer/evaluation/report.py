"""Reports of a run, rebuilt from the run directory alone (``kerasmer evaluate``).

:func:`write_report` reads the finished folds' ``result.json`` files of one or
more run directories (fan-out jobs: ``--folds`` in separate directories),
pools their predictions and writes ``metrics.json``, ``predictions.csv``,
``report.md``, ``confusion_matrix.png`` and ``training_curves.png``.  Reports
are written atomically.

Scores: *pooled* metrics are computed over all folds' predictions together (UF1
and UAR as in MEGC); *mean ± std across folds* is reported separately and
labelled as such.  Every fold states the epoch whose weights were evaluated.

Example:
    >>> print(write_report("runs/learnet-casme2"))  # doctest: +SKIP
    >>> write_report("runs/merged", sources=["runs/job1", "runs/job2"])  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from kerasmer.core.atomic import atomic_save_figure, atomic_write_text
from kerasmer.evaluation.metrics import compute_metrics, mean_std_across_folds
from kerasmer.evaluation.results import predictions_frame, read_fold_results
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
    return {"run": first, "folds": folds, "failed": failed, "missing": missing, "runs": [str(d) for d in run_dirs]}


def compute_report(merged: dict) -> dict:
    """The content of ``metrics.json`` for merged runs (see :func:`load_runs`)."""
    run, folds = merged["run"], merged["folds"]
    names = run["class_names"]
    import numpy as np

    pooled = (compute_metrics(np.concatenate([f.y_true for f in folds]), np.concatenate([f.y_pred for f in folds]),
                              names) if folds else None)
    return {
        "protocol": run["protocol"],
        "subject_dependent": bool(run.get("subject_dependent")),
        "model": run["model"], "recipe": run.get("recipe"), "precision": run.get("precision"),
        "labels": run.get("labels"), "class_names": names, "runs": merged["runs"],
        "pooled": pooled,
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


def _fmt(v) -> str:
    return "–" if v is None or v != v else f"{v:.4f}"


def render_markdown(report: dict) -> str:
    """``report.md``: headline, pooled scores, per-class table (LARNet Table 4 form), confusion, folds."""
    out = io.StringIO()
    w = lambda s="": out.write(s + "\n")  # noqa: E731
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
    recipe = report.get("recipe") or {}
    w(f"- recipe: `{recipe.get('name')}` ({recipe.get('paper', '')}); precision `{report.get('precision')}`; "
      f"labels `{report.get('labels') or 'dataset emotions'}`; classes {', '.join(report['class_names'])}")
    w(f"- folds evaluated: {len(report['folds'])}; failed: {len(report['failed_folds'])}; "
      f"not (yet) run: {len(report['missing_folds'])}")
    w("- evaluated weights: for every fold, those of the epoch with the lowest loss on *validation subjects* "
      "(training subjects held out from training), listed below")
    w()
    p = report["pooled"]
    if p is None:
        w("No fold has finished yet.")
    else:
        w("## Pooled over all folds' predictions")
        w()
        w("| clips | accuracy | UF1 | UAR | WAR |")
        w("|---:|---:|---:|---:|---:|")
        w(f"| {p['n']} | {_fmt(p['accuracy'])} | {_fmt(p['uf1'])} | {_fmt(p['uar'])} | {_fmt(p['war'])} |")
        w()
        a = report["across_folds"]
        w(f"Mean ± std across folds (of per-fold scores, not the pooled score): " + ", ".join(
            f"{k} {a[k]['mean']:.4f} ± {a[k]['std']:.4f}" for k in ("accuracy", "uf1", "uar", "war") if k in a))
        w()
        w("## Per class (pooled)")
        w()
        w("| class | precision | recall | F1-score | support |")
        w("|---|---:|---:|---:|---:|")
        for name, m in p["per_class"].items():
            w(f"| {name} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} | {m['support']} |")
        w()
        w("## Confusion matrix (rows true, columns predicted)")
        w()
        names = report["class_names"]
        w("| true \\ pred | " + " | ".join(names) + " |")
        w("|---|" + "---:|" * len(names))
        for name, row in zip(names, p["confusion_matrix"]):
            w(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
        w()
        w("![confusion matrix](confusion_matrix.png)  ![training curves](training_curves.png)")
        w()
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


def write_report(run_dir, sources=None) -> str:
    """Recompute and write the report files into ``run_dir``.

    Args:
        run_dir: where the reports go.
        sources: run directories to merge (default: ``[run_dir]``).  Merging
            into a new directory copies the first source's ``run.json`` there.

    Returns:
        The Markdown report.
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
    if report["pooled"] is not None:
        atomic_save_figure(plot_confusion_matrix(report["pooled"]["confusion_matrix"], report["class_names"],
                                           title=f"{report['model']} — {report['protocol']} (pooled)"),
                           run_dir / "confusion_matrix.png", dpi=110)
        atomic_save_figure(plot_training_curves({f.name: f.history for f in merged["folds"]},
                                          selected={f.name: f.evaluated_epoch for f in merged["folds"]}),
                           run_dir / "training_curves.png", dpi=110)
    return md
