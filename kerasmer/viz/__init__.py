"""Plots: confusion matrices and training curves."""

from kerasmer.viz.plots import plot_confusion_matrix, plot_training_curves

__all__ = ["plot_confusion_matrix", "plot_training_curves"]
