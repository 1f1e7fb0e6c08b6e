"""Metrics and evaluation protocols."""

from kerasmer.evaluation.metrics import compute_metrics, mean_std_across_folds
from kerasmer.evaluation.protocols import Fold, loso_folds, split_validation

__all__ = ["Fold", "compute_metrics", "loso_folds", "mean_std_across_folds", "split_validation"]
