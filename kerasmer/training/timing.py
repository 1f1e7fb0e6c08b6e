"""Where a run's time goes, fold stage by fold stage: a :class:`~kerasmer.training.TrainerHook`.

``kerasmer quickstart`` prints this breakdown (README), so that a user sees whether the time goes to the
model's steps or around them (issue 16, item 4).
"""

from __future__ import annotations

import time

from kerasmer.training.trainer import TrainerHook

# The fold's stages in order, each ending at a hook call (see FoldTrainer.run).
STAGES = {
    "prepare": "split, normalisation fitted on the training subjects (inputs built on first use)",
    "build": "model built, initialised and compiled",
    "first epoch": "the first epoch: tracing the step, filling the input cache",
    "other epochs": "the remaining epochs: steps, validation, selection, checkpoints",
    "select + test": "the chosen epoch restored, the test subjects predicted",
}


class StageTimes(TrainerHook):
    """Sums, over the folds of a run, the seconds of each fold stage (:data:`STAGES`).

    Attributes:
        seconds: ``{stage: seconds summed over folds}``.
        folds: the number of folds timed.

    Example:
        >>> timer = StageTimes()
        >>> run(config, hooks=[timer]); print(timer.table())  # doctest: +SKIP
    """

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.folds = 0
        self._last = None
        self._epochs = 0

    def _lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now

    def on_fold_begin(self, trainer, state):
        self._last, self._epochs = state.started, 0
        self._lap("prepare")

    def on_model_built(self, trainer, state):
        self._lap("build")

    def on_epoch_end(self, trainer, state, epoch, logs):
        self._lap("first epoch" if self._epochs == 0 else "other epochs")
        self._epochs += 1

    def on_fold_end(self, trainer, state, result):
        self._lap("select + test")
        self.folds += 1

    def total(self) -> float:
        """Seconds inside the folds, all stages."""
        return sum(self.seconds.values())

    def table(self, indent: str = "") -> str:
        """One line per stage: seconds summed over folds, share of the folds' time, what the stage does."""
        total = self.total() or 1.0
        return "\n".join(f"{indent}{stage:<14s}{s:7.1f} s  {s / total:4.0%}  {STAGES[stage]}"
                         for stage, s in self.seconds.items())
