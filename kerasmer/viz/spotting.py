"""The spotting figure: a video's motion curve with the spotted intervals and their labels.

Example:
    >>> fig = plot_spotting(curve, 200.0, [{"onset": 410, "apex": 440, "offset": 480, "label": "surprise",
    ...                                     "score": 0.8}], path="motion_curve.png")  # doctest: +SKIP
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
# Object-oriented API (no pyplot): no global figure state, no display needed.
from matplotlib.figure import Figure

from kerasmer.core.atomic import atomic_save_figure


def _label_colors(labels) -> dict:
    colors = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: colors[i % len(colors)] for i, label in enumerate(sorted(set(labels)))}


def plot_spotting(curve, fps: float, intervals, *, threshold: float | None = None, no_face=(), truth=(),
                  path=None, title: str = "Motion curve and spotted intervals") -> Figure:
    """Draw the motion curve over time, shade each spotted interval and write its label above it.

    Args:
        curve: ``(T,)`` per-frame motion score; NaN where no face was tracked (drawn as a gap).
        fps: frames per second (the x axis is in seconds).
        intervals: dicts (or rows) with ``onset``, ``apex``, ``offset`` (frames) and optionally ``label``
            and ``score``.
        threshold: the spotting threshold, drawn as a dashed line: one value, a ``(T,)`` array (one value
            per tracked window, NaN between them), or ``None``.
        no_face: ``(start, stop)`` frame ranges without a face, hatched grey.
        truth: optional ground-truth intervals (dicts with ``onset`` and ``offset``), drawn as bars below.
        path: save the figure here (PNG, written atomically) if given.
        title: the figure title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: ``fps`` not positive, or ``curve`` not one-dimensional.
    """
    curve = np.asarray(curve, dtype=float)
    if curve.ndim != 1:
        raise ValueError(f"plot_spotting: curve must be one-dimensional, got shape {curve.shape}")
    if not fps or fps <= 0:
        raise ValueError(f"plot_spotting: fps must be positive, got {fps!r}")
    intervals = [dict(iv) for iv in intervals]
    t = np.arange(len(curve)) / fps
    fig = Figure(figsize=(max(8.0, min(24.0, len(curve) / fps / 2.5)), 3.6))
    ax = fig.subplots()
    ax.plot(t, curve, color="0.25", lw=0.8, label="motion")
    if threshold is not None and np.ndim(threshold) == 1:  # one threshold per tracked window
        ax.plot(t, np.asarray(threshold, float), color="tab:red", ls="--", lw=0.8, label="threshold")
    elif threshold is not None and np.isfinite(threshold):
        ax.axhline(threshold, color="tab:red", ls="--", lw=0.8, label="threshold")
    top = np.nanmax(curve) if np.isfinite(curve).any() else 1.0
    colors = _label_colors(str(iv.get("label", "spotted")) for iv in intervals)
    for iv in intervals:
        label = str(iv.get("label", "spotted"))
        ax.axvspan(iv["onset"] / fps, iv["offset"] / fps, color=colors[label], alpha=0.3, lw=0)
        ax.axvline(iv["apex"] / fps, color=colors[label], lw=0.8)
        score = f" {iv['score']:.2f}" if iv.get("score") is not None else ""
        ax.text(iv["apex"] / fps, top * 1.22, f"{label}{score}", rotation=90, fontsize=7, ha="right", va="top")
    for start, stop in no_face:
        ax.axvspan(start / fps, stop / fps, facecolor="none", edgecolor="0.6", hatch="///", lw=0)
    for i, iv in enumerate(truth):
        ax.plot([iv["onset"] / fps, iv["offset"] / fps], [-0.04 * top] * 2, color="tab:green", lw=3,
                label="ground truth" if i == 0 else None)
    ax.set_xlim(0, max(t[-1] if len(t) else 0, 1e-3))
    ax.set_ylim(top=top * 1.25 if top > 0 else 1.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("motion")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    if path is not None:
        atomic_save_figure(fig, path, dpi=110)
    return fig


__all__ = ["plot_spotting"]
