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
