"""Callbacks for honest model selection, progress output that suits its stream, and quiet TensorFlow logs.

Example:
    >>> with quiet_tf_logs():  # doctest: +SKIP
    ...     model.fit(train_ds, callbacks=[EpochProgress("01", 30)], verbose=1)
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time

import keras
import numpy as np


class BestEpoch(keras.callbacks.Callback):
    """Track the best epoch on a validation metric and restore its weights at the end.

    Unlike ``EarlyStopping(restore_best_weights=True)``, which restores only when
    it stops early, this always restores the best epoch's weights, and records
    which epoch that was, so reports can say exactly which weights were evaluated.
    The metric must come from validation data (``val_*``): choosing on the
    test subject is the field's best-known flaw.

    Args:
        monitor: the logged metric to watch, e.g. ``"val_loss"``.
        mode: ``"min"`` or ``"max"``.
        patience: stop after this many epochs without improvement (None: never).

    Attributes:
        best_epoch: 1-based epoch whose weights are restored (None before training).
        best: the best metric value.
        seen_logs: every epoch's logs, for audits.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int | None = None):
        super().__init__()
        if not monitor.startswith("val_"):
            raise ValueError(f"BestEpoch: monitor must be a validation metric (val_*), got {monitor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"BestEpoch: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.best_epoch = None
        self.best = math.inf if mode == "min" else -math.inf
        self.best_weights = None
        self.seen_logs: list[dict] = []
        self._wait = 0

    def _better(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.seen_logs.append(logs)
        if self.monitor not in logs:
            raise KeyError(f"BestEpoch: {self.monitor!r} is not logged (logged: {sorted(logs)}); "
                           "pass validation data to fit()")
        value = float(logs[self.monitor])
        if np.isfinite(value) and self._better(value):
            self.best, self.best_epoch = value, epoch + 1
            self.best_weights = [np.array(w) for w in self.model.get_weights()]
            self._wait = 0
        else:
            self._wait += 1
            if self.patience is not None and self._wait > self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def get_state(self) -> dict:
        """The counters a checkpoint keeps (the best weights are saved separately)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self._wait}

    def set_state(self, state: dict, best_weights=None) -> None:
        """Restore :meth:`get_state`'s counters and the best weights from a checkpoint."""
        self.best, self.best_epoch, self._wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = best_weights


def plateau_state(plateau) -> dict | None:
    """The counters of a ``ReduceLROnPlateau`` a checkpoint keeps (None for no scheduler)."""
    if plateau is None:
        return None
    return {"best": plateau.best, "wait": plateau.wait, "cooldown_counter": plateau.cooldown_counter}


def restore_plateau(plateau, state: dict | None) -> None:
    """Put :func:`plateau_state`'s counters back into ``plateau``."""
    if plateau is not None and state:
        plateau.best, plateau.wait, plateau.cooldown_counter = state["best"], state["wait"], state["cooldown_counter"]


def interactive_output(stream=None) -> bool:
    """Whether ``stream`` (default: ``sys.stdout``) is a terminal, where a redrawn progress bar belongs.

    Keras' ``Progbar`` redraws itself with backspaces and ANSI colours whenever
    ``posix`` is imported, i.e. always on Linux, so ``kerasmer train > log`` would
    fill the log with escape codes; kerasmer's progress checks the stream instead.

    Example:
        >>> import io
        >>> interactive_output(io.StringIO())
        False
    """
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras' epoch progress bar, headed with the fold and the fold's real epoch count.

    Each epoch is its own ``fit`` call, so Keras' own header would read
    ``Epoch e/e``; this one reads ``fold 05 · epoch e/E``.  On a terminal it is
    Keras' bar; when stdout is a file, a pipe or a notebook it prints one plain
    line per epoch (Keras' ``verbose=2`` form: no colours, no redrawing).

    Args:
        fold_name: the fold's name, shown in the header.
        total_epochs: the fold's planned epochs.
        stream: where progress goes, to decide bar or plain lines (default: ``sys.stdout`` at each epoch).

    Example:
        >>> model.fit(ds, verbose=1, callbacks=[EpochProgress("01", 30)])  # doctest: +SKIP
    """

    def __init__(self, fold_name: str, total_epochs: int, stream=None):
        super().__init__()
        self.fold_name, self.total_epochs, self.stream = fold_name, int(total_epochs), stream

    def set_params(self, params):
        super().set_params(params)
        if self.verbose == 1 and not interactive_output(self.stream):
            self.verbose = 2  # Keras' one-line-per-epoch form: plain text

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose:
            print(f"\nfold {self.fold_name} · epoch {epoch + 1}/{self.total_epochs}", flush=True)


class FoldProgress:
    """Progress over a run's folds with an ETA and the pooled UF1 so far.

    A Keras ``Progbar`` on a terminal; elsewhere (a log file, a pipe, a notebook)
    one plain line per finished fold, so logs hold no escape codes.

    Args:
        total: folds this invocation runs.
        stream: where progress goes (default: ``sys.stdout``).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = FoldProgress(2, stream=out)
        >>> bar.update(1, "01", 0.5)
        >>> out.getvalue().startswith("fold 1/2 (01) done")
        True
    """

    def __init__(self, total: int, stream=None):
        self.total, self.stream = int(total), stream
        self.started = time.perf_counter()
        self.bar = (keras.utils.Progbar(self.total, unit_name="fold", stateful_metrics=["pooled_uf1"])
                    if interactive_output(stream) else None)

    def update(self, done: int, fold_name: str, pooled_uf1: float | None) -> None:
        """Report that ``done`` folds are finished, the last one ``fold_name``; ``pooled_uf1`` None: not pooled."""
        if self.bar is not None:
            values = [] if pooled_uf1 is None else [("pooled_uf1", pooled_uf1)]
            self.bar.update(done, values=values, finalize=done == self.total)
            return
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (self.total - done) if done else float("nan")
        score = "" if pooled_uf1 is None else f" · pooled UF1 so far {pooled_uf1:.3f}"
        print(f"fold {done}/{self.total} ({fold_name}) done · {elapsed:.0f} s elapsed · ETA {eta:.0f} s{score}",
              file=self.stream or sys.stdout, flush=True)


# What a kerasmer call does not show of TensorFlow's Python logger (``tf.get_logger()``).  Its INFO records are
# bookkeeping a reader cannot act on ("Assets written to: <a temporary directory>").  The retracing warning is
# expected here: every fold builds a new model, whose train/test/predict functions each trace once, and TensorFlow
# counts traces per Python *code object*, so the n-th fold's first trace looks like the n-th retrace of one function.
# (Real retracing within a fold is avoided and tested: tests/training/test_callbacks.py.)
_KERAS_FUNCTIONS = ("multi_step_on_iterator", "one_step_on_data")


def _expected_tf_record(record: logging.LogRecord) -> bool:
    if record.levelno < logging.WARNING:
        return True
    message = record.getMessage()
    return "triggered tf.function retracing" in message and any(f in message for f in _KERAS_FUNCTIONS)


class _QuietFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _expected_tf_record(record)


@contextlib.contextmanager
def quiet_tf_logs():
    """Hide TensorFlow's INFO logs and its per-fold retracing warning for the ``with`` block only.

    Other TensorFlow warnings and errors still show, and the user's own logging
    is untouched once the block ends.

    Example:
        >>> with quiet_tf_logs():
        ...     pass
    """
    tf_logger = logging.getLogger("tensorflow")  # what tf.get_logger() returns, without importing TensorFlow here
    quiet = _QuietFilter()
    tf_logger.addFilter(quiet)
    try:
        yield
    finally:
        tf_logger.removeFilter(quiet)
