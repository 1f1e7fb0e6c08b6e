"""Callbacks for honest model selection."""

from __future__ import annotations

import math

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


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras' epoch progress bar, headed with the fold and the fold's real epoch count.

    Each epoch is its own ``fit`` call, so Keras' own header would read
    ``Epoch e/e``; this one reads ``fold 05 · epoch e/E``.
    """

    def __init__(self, fold_name: str, total_epochs: int):
        super().__init__()
        self.fold_name, self.total_epochs = fold_name, int(total_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose:
            print(f"\nfold {self.fold_name} · epoch {epoch + 1}/{self.total_epochs}", flush=True)
