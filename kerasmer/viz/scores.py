"""Per-class F1 of several runs side by side (models or seeds), with error bars over folds or seeds.

Example:
    >>> runs = {"learnet": [[0.6, 0.4, 0.7], [0.5, 0.5, 0.8]], "larnet": [[0.7, 0.3, 0.6]]}
    >>> fig = plot_f1_bars(runs, ["negative", "positive", "surprise"], path="f1.png")  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from kerasmer.viz._figure import finish


def f1_summary(scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, spread and count of per-class F1 over repeats, ignoring NaN (a class absent from a fold).

    Args:
        scores: ``(repeats, classes)`` F1 values, one row per fold or seed; a 1-D row is one repeat.

    Returns:
        ``(mean, std, n)`` per class; ``std`` is the sample standard deviation (0 with one repeat).

    Example:
        >>> mean, std, n = f1_summary([[0.5, 1.0], [0.7, np.nan]])
        >>> mean.round(2).tolist(), n.tolist()
        ([0.6, 1.0], [2, 1])
    """
    s = np.atleast_2d(np.asarray(scores, np.float64))
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"f1_summary: scores must be (repeats, classes), got shape {np.shape(scores)}")
    finite = np.isfinite(s)
    if np.any(s[finite] < 0) or np.any(s[finite] > 1):
        raise ValueError("f1_summary: F1 values must lie in [0, 1]")
    n = finite.sum(axis=0)
    total = np.where(finite, s, 0).sum(axis=0)
    mean = np.divide(total, n, out=np.full(s.shape[1], np.nan), where=n > 0)
    dev = np.where(finite, s - mean, 0)
    std = np.sqrt(np.divide((dev**2).sum(axis=0), n - 1, out=np.zeros(s.shape[1]), where=n > 1))
    return mean, std, n


def plot_f1_bars(runs: dict, class_names, *, path=None, title: str = "per-class F1",
                 spread: str = "folds"):
    """Grouped bars: per class, one bar per run (its mean F1), with the standard deviation as error bars.

    Args:
        runs: ``{run name: (repeats, classes) F1 array}``, e.g. each fold's per-class F1 of one model, or each
            seed's; NaN marks a class a fold did not contain.
        class_names: the class names, in the columns' order.
        path: save the figure here (PNG) if given.
        title: figure title.
        spread: what the repeats are (``"folds"``, ``"seeds"``), for the legend.

    Returns:
        The matplotlib Figure.  The last group is the unweighted mean over classes (UF1-like) of each run.

    Raises:
        ValueError: no run, or a run whose column count differs from ``class_names``.

    Example:
        >>> fig = plot_f1_bars({"seed 0": f1_0, "seed 1": f1_1}, classes, spread="folds", path="f1.png")  # doctest: +SKIP
    """
    class_names = [str(c) for c in class_names]
    if not runs:
        raise ValueError("plot_f1_bars: no run given")
    stats = {}
    for name, scores in runs.items():
        s = np.atleast_2d(np.asarray(scores, np.float64))
        if s.shape[-1] != len(class_names):
            raise ValueError(f"plot_f1_bars: run {name!r} has {s.shape[-1]} columns for {len(class_names)} classes")
        per_repeat_mean = np.nanmean(np.where(np.isfinite(s), s, np.nan), axis=1, keepdims=True)
        stats[name] = f1_summary(np.concatenate([s, per_repeat_mean], axis=1))
    groups = class_names + ["mean"]
    width = 0.8 / len(runs)
    fig = Figure(figsize=(max(5.0, 0.9 * len(groups) * max(1, len(runs) / 2)), 3.8))
    ax = fig.subplots()
    x = np.arange(len(groups))
    for k, (name, (mean, std, n)) in enumerate(stats.items()):
        label = f"{name} (n = {int(n.max())} {spread})"
        ax.bar(x - 0.4 + width * (k + 0.5), np.nan_to_num(mean), width, yerr=std, capsize=3, label=label)
    ax.set_xticks(x, groups, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 (mean ± sd)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return finish(fig, path)


__all__ = ["f1_summary", "plot_f1_bars"]
