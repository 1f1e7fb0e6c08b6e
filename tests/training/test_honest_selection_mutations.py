"""The honest-selection check catches each kind of leak (issue 13, finding 10).

Each test injects one leak into the fold trainer through a :class:`FoldTrainer`
subclass and asserts that :func:`assert_test_subject_inert`, which passes on
the real trainer (``test_honest_selection.py``), raises AssertionError:

1. class weights computed over the whole table, test subject included;
2. ``ReduceLROnPlateau`` driven by the test subject's loss, computed with a direct ``model(x)`` call;
3. the epoch chosen on the test subject's loss.
"""

import re

import keras
import numpy as np
import pytest

from kerasmer.evaluation import loso_folds
from kerasmer.training import FoldTrainer, TrainSpec
from kerasmer.training.recipes import get_recipe
from kerasmer.training.trainer import epoch_seed

from .conftest import SHAPE
from .honest_check import RECIPE_OVERRIDES, assert_test_subject_inert


def _test_loss(trainer: FoldTrainer, state) -> float:
    """The test subject's mean loss, by calling the model directly (no fit/evaluate/predict)."""
    losses = [keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(y, state.model(x, training=False)))
              for x, y in trainer.make_dataset(state, "test", training=False, seed=state.seed)]
    return float(np.mean(np.concatenate(losses)))


class ClassWeightsOverWholeTable(FoldTrainer):
    """Leak 1: ``class_weight`` from the label counts of the whole table (the test subject's included)."""

    def fit_epoch(self, state, epoch, val_ds, callbacks):
        labels = state.df[self.spec.label_column].astype(str)
        counts = labels.value_counts()
        names = list(self.spec.class_names)
        weights = {names.index(c): len(labels) / (len(counts) * n) for c, n in counts.items()}
        train_ds = self.make_dataset(state, "train", training=True, seed=epoch_seed(state.seed, epoch))
        lr = float(keras.ops.convert_to_numpy(state.model.optimizer.learning_rate))
        val, val_steps = val_ds if val_ds is not None else (None, None)  # FoldTrainer.validation_batches' pair
        h = state.model.fit(train_ds, validation_data=val, validation_steps=val_steps, initial_epoch=epoch,
                            epochs=epoch + 1, verbose=0, shuffle=False, callbacks=callbacks, class_weight=weights)
        return {**{k: float(v[-1]) for k, v in h.history.items()}, "learning_rate": lr}


class PlateauOnTestLoss(FoldTrainer):
    """Leak 2: the plateau scheduler is fed the test subject's loss in place of the validation loss."""

    def make_selection(self, state):
        super().make_selection(state)
        on_epoch_end = state.plateau.on_epoch_end
        state.plateau.on_epoch_end = lambda epoch, logs: on_epoch_end(epoch, {**logs,
                                                                               "val_loss": _test_loss(self, state)})


class SelectionOnTestLoss(FoldTrainer):
    """Leak 3: the epoch selector is fed the test subject's loss in place of the validation loss."""

    def make_selection(self, state):
        super().make_selection(state)
        on_epoch_end = state.selector.on_epoch_end
        state.selector.on_epoch_end = lambda epoch, logs: on_epoch_end(epoch, {**logs,
                                                                                 "val_loss": _test_loss(self, state)})


# Each leak, and the artefact the check names when it catches it.
LEAKS = [(ClassWeightsOverWholeTable, "class or sample weights passed to fit"),
         (PlateauOnTestLoss, "history 'learning_rate'"),
         (SelectionOnTestLoss, "the evaluated epoch")]


@pytest.mark.parametrize("leaky,artefact", LEAKS, ids=["class_weights", "plateau_on_test_loss",
                                                       "selection_on_test_loss"])
def test_check_catches_the_leak(synthetic_df, leaky, artefact):
    names = sorted(synthetic_df["emotion"].unique())
    spec = TrainSpec(model="learnet", class_names=names, recipe=get_recipe("shallow", **RECIPE_OVERRIDES),
                     input_shape=SHAPE)
    with pytest.raises(AssertionError, match=re.escape(artefact)):
        assert_test_subject_inert(synthetic_df, loso_folds(synthetic_df, seed=0)[0], spec, trainer_cls=leaky)
