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

from kerasmer.viz._figure import finish


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

    Raises:
        ValueError: ``cm`` is not square with one row per class name.

    Example:
        >>> fig = plot_confusion_matrix([[5, 1], [2, 4]], ["neg", "pos"])
        >>> fig.axes[0].get_xlabel()
        'predicted'
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
    return finish(fig, path)  # tight layout; an atomic PNG at the viz DPI when a path is given


def epoch_ticks(epochs: int, max_ticks: int = 10) -> list[int]:
    """Tick positions for an epoch axis: 1, then every ``step``-th epoch, at most about ``max_ticks`` of them.

    Args:
        epochs: the number of epochs drawn (epochs are 1-based).
        max_ticks: the most ticks wanted (the step is the smallest of 1, 2, 5, 10, 20, 25, 50, ... that fits).

    Returns:
        Increasing integers from 1 to at most ``epochs``.

    Example:
        >>> epoch_ticks(3), epoch_ticks(30)
        ([1, 2, 3], [1, 5, 10, 15, 20, 25, 30])
    """
    n = max(int(epochs), 1)
    # 1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, ...: round steps a reader counts in
    steps = (int(base * 10**k) for k in range(12) for base in (1, 2, 2.5, 5) if float(base * 10**k).is_integer())
    step = next(s for s in steps if n / s <= max_ticks)
    return [1] + [t for t in range(step, n + 1, step) if t > 1]


def plot_training_curves(histories: dict, *, selected: dict | None = None, path=None,
                         metrics=("loss", "accuracy")):
    """Training and validation curves of every fold, with the selected epoch marked, on a 1-based epoch axis.

    Args:
        histories: ``{fold name: history dict}`` (``loss``, ``val_loss``, ...).
        selected: ``{fold name: evaluated epoch}`` (1-based), drawn as dots on the validation curve.
        path: save the figure here (PNG) if given.
        metrics: the panels; each shows ``m`` (solid) and ``val_m`` (dashed).

    Returns:
        The matplotlib Figure; its epoch axes have integer ticks from 1 (:func:`epoch_ticks`).

    Example:
        >>> fig = plot_training_curves({"01": {"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 1.0]}},
        ...                            selected={"01": 2}, metrics=("loss",))
        >>> [int(t) for t in fig.axes[0].get_xticks()]
        [1, 2, 3]
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
        epochs = max((len(h.get(k) or ()) for h in histories.values() for k in (metric, f"val_{metric}")), default=1)
        # Epochs are counted from 1, as the selected epoch is: integer ticks from 1, never a tick at 0 or 0.25.
        ax.xaxis.set_major_locator(mpl.ticker.FixedLocator(epoch_ticks(epochs)))
        ax.set_xlim(0.75, max(epochs, 1) + 0.25)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: training (solid), validation subjects (dashed)", fontsize=9)
        ax.grid(alpha=0.3)
    if len(histories) <= 12:
        axes[0][0].legend(fontsize=7, title="fold (dot = evaluated epoch)", title_fontsize=7)
    return finish(fig, path)  # tight layout; an atomic PNG at the viz DPI when a path is given
