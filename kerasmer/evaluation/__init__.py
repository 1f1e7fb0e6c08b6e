"""Metrics, the protocol table, fold and run results, and reports.

``evaluation`` imports nothing from ``training``: the trainer produces the
records defined here (:class:`FoldResult`, :class:`RunResult`) and the report
reads them back from a run directory.
"""

from kerasmer.evaluation.metrics import compute_metrics, mean_std_across_folds
from kerasmer.evaluation.protocols import (
    PROTOCOLS, Fold, Protocol, get_protocol, list_protocols, loso_folds, make_folds, split_validation,
)
from kerasmer.evaluation.results import FoldResult, RunResult, summarize

__all__ = ["Fold", "FoldResult", "PROTOCOLS", "Protocol", "RunResult", "compute_metrics", "get_protocol",
           "list_protocols", "loso_folds", "make_folds", "mean_std_across_folds", "split_validation", "summarize"]
