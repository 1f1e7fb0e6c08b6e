"""Plots of a run: the confusion matrix and the training curves (matplotlib, no display needed).

In a notebook, show a saved PNG with ``IPython.display.Image(path)``.

Example:
    >>> fig = plot_confusion_matrix([[5, 1], [2, 4]], ["neg", "pos"], path="cm.png")  # doctest: +SKIP
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.ticker  # noqa: F401  (mpl.ticker)
import numpy as np
# Figures are built with the object-oriented API (no pyplot): no global figure
# state, no display needed, and they save to PNG on any backend.
from matplotlib.figure import Figure


def plot_confusion_matrix(cm, class_names, *, path=None, normalize: bool = True, title: str = "Confusion matrix"):
    """Draw a confusion matrix (rows true, columns predicted) with counts and row shares.

    Args:
        cm: square matrix of counts.
        class_names: class names, index-aligned.
        path: save the figure here (PNG) if given.
        normalize: colour by the share of each true class (recall), so rare classes show.
        title: figure title.

    Returns:
        The matplotlib Figure.
    """
    cm = np.asarray(cm, dtype=float)
    if cm.shape != (len(class_names), len(class_names)):
        raise ValueError(f"plot_confusion_matrix: cm has shape {cm.shape} but there are {len(class_names)} classes")
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 1.2 + 0.9 * len(class_names)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    im = ax.imshow(share if normalize else cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class" if normalize else "clips")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            dark = share[i, j] > 0.5 if normalize else cm[i, j] > cm.max() / 2
            ax.text(j, i, f"{int(cm[i, j])}\n{share[i, j]:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_training_curves(histories: dict, *, selected: dict | None = None, path=None,
                         metrics=("loss", "accuracy")):
    """Training and validation curves of every fold, with the selected epoch marked.

    Args:
        histories: ``{fold name: history dict}`` (``loss``, ``val_loss``, ...).
        selected: ``{fold name: evaluated epoch}`` (1-based), drawn as dots on the validation curve.
        path: save the figure here (PNG) if given.
        metrics: the panels; each shows ``m`` (solid) and ``val_m`` (dashed).

    Returns:
        The matplotlib Figure.
    """
    fig = Figure(figsize=(5.2 * len(metrics), 3.8))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics):
        for k, (name, hist) in enumerate(histories.items()):
            c = colors[k % len(colors)]
            label = name if len(histories) <= 12 else None  # a legend of 60 folds helps nobody
            if metric in hist:
                ax.plot(range(1, len(hist[metric]) + 1), hist[metric], color=c, lw=1.2, label=label)
            val = hist.get(f"val_{metric}")
            if val:
                ax.plot(range(1, len(val) + 1), val, color=c, lw=1.2, ls="--")
                epoch = (selected or {}).get(name)
                if epoch and 1 <= epoch <= len(val):
                    ax.plot([epoch], [val[epoch - 1]], "o", color=c, ms=5)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: training (solid), validation subjects (dashed)", fontsize=9)
        ax.grid(alpha=0.3)
    if len(histories) <= 12:
        axes[0][0].legend(fontsize=7, title="fold (dot = evaluated epoch)", title_fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
