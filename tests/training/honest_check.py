"""The honest-selection check: a fold's test subject must reach nothing but the final ``predict``.

:func:`assert_test_subject_inert` trains one fold twice on two tables that
differ only in the test subject's rows, chosen so that any other use of them
changes something measurable:

* ``honest``: the test subject's clips are copies of one training subject's
  clips with their own labels; the model learns them, so their loss falls as
  training goes on.
* ``poison``: the test subject's clips are copies of training clips of one
  class, all labelled as another class; the model learns to contradict them,
  so their loss rises.  This also skews the whole table's label counts and
  changes its pixel statistics.

So a scheduler or an epoch selector that reads the test loss cuts the
learning rate or chooses the epoch differently; class weights or
normalisation computed over the whole table differ; and every training-side
artefact is compared: the class weights and sample weights passed to ``fit``,
the normalisation statistics, the whole history (losses, validation losses,
the learning rate of each epoch), the evaluated epoch and the final weights.
The two runs must agree on all of them, while their test predictions (the
one legitimate use) must differ, so the check cannot pass vacuously.

``tests/training/test_honest_selection.py`` runs it on the real trainer and
``tests/training/test_honest_selection_mutations.py`` proves it fails for
each injected leak.
"""

import contextlib
from unittest import mock

import keras
import numpy as np

from kerasmer.training import FoldTrainer, TrainSpec

# Enough epochs for a learning-rate cut or an epoch choice to show up; plateau_patience=0 makes the scheduler act on
# the first epoch whose monitored loss does not improve; early stopping never ends the fold early.
EPOCHS = 5
RECIPE_OVERRIDES = dict(epochs=EPOCHS, batch_size=8, plateau_patience=0, plateau_factor=0.5,
                        early_stopping_patience=EPOCHS)
_FRAME_COLUMNS = ["frame_paths", "frame_numbers", "onset", "apex", "offset"]


def poisoned_tables(df, fold, label_column="emotion"):
    """The ``honest`` and ``poison`` versions of ``df`` (they differ only in the fold's test rows).

    Args:
        df: annotation table; at least one training subject and two classes.
        fold: the fold whose test rows are rewritten.
        label_column: the label column.

    Returns:
        ``{"honest": DataFrame, "poison": DataFrame}``.

    Example:
        >>> tables = poisoned_tables(df, loso_folds(df)[0])  # doctest: +SKIP
    """
    train = df.iloc[fold.train]
    first_subject = train[train["subject"] == train["subject"].iloc[0]]
    classes = sorted(df[label_column].astype(str).unique())
    one_class = train[train[label_column].astype(str) == classes[0]]
    tables = {}
    for name, donors, label in (("honest", first_subject, None), ("poison", one_class, classes[-1])):
        out = df.copy()
        donor_rows = np.resize(np.arange(len(donors)), len(fold.test))
        for row, d in zip(fold.test, donor_rows):
            for col in _FRAME_COLUMNS:
                out.at[out.index[row], col] = donors.iloc[d][col]
            out.at[out.index[row], label_column] = label if label is not None else donors.iloc[d][label_column]
        tables[name] = out
    return tables


@contextlib.contextmanager
def _recording_fit(calls: list):
    """Record the class and sample weights of every ``Model.fit`` call (training-side artefacts)."""
    real_fit = keras.Model.fit

    def fit(self, *args, **kwargs):
        calls.append({"class_weight": kwargs.get("class_weight"), "sample_weight": kwargs.get("sample_weight")})
        return real_fit(self, *args, **kwargs)

    with mock.patch.object(keras.Model, "fit", fit):
        yield


def train_artefacts(table, fold, spec: TrainSpec, trainer_cls=FoldTrainer, hooks=(), seed: int = 3) -> dict:
    """Train ``fold`` of ``table`` and return what training produced, and the test predictions.

    Returns:
        ``{"fit_calls", "normalization", "history", "evaluated_epoch", "weights", "probabilities", "y_true"}``.
    """
    calls = []
    with _recording_fit(calls):
        model, result = trainer_cls(spec, hooks=hooks, log=lambda s: None).train(table, fold, seed=seed)
    return {"fit_calls": calls, "normalization": result.normalization, "history": result.history,
            "evaluated_epoch": result.evaluated_epoch, "weights": model.get_weights(),
            "probabilities": result.probabilities, "y_true": result.y_true}


def _assert_same(a, b, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64"), rtol=1e-5,
                               atol=1e-6, err_msg=f"{what} depends on the test subject")


def assert_test_subject_inert(df, fold, spec: TrainSpec, trainer_cls=FoldTrainer, hooks=()) -> dict:
    """Raise AssertionError if the test subject influences anything but the final prediction.

    Args:
        df: annotation table (e.g. the synthetic fixture).
        fold: a fold of ``df`` with training, validation and test subjects.
        spec: the train spec (use ``RECIPE_OVERRIDES`` in its recipe: plateau scheduling and enough epochs).
        trainer_cls: the trainer class (a :class:`FoldTrainer` or a subclass).
        hooks: trainer hooks.

    Returns:
        The artefacts of the ``honest`` run (see :func:`train_artefacts`).

    Raises:
        AssertionError: naming the first artefact that depends on the test subject.
        RuntimeError: the poison did not reach the test predictions (the check would prove nothing).

    Example:
        >>> assert_test_subject_inert(df, loso_folds(df)[0], spec)  # doctest: +SKIP
    """
    tables = poisoned_tables(df, fold, spec.label_column)
    honest, poison = (train_artefacts(tables[k], fold, spec, trainer_cls, hooks) for k in ("honest", "poison"))
    # The poison reached predict (the legitimate use), so equal training below is not vacuous; a RuntimeError, not an
    # AssertionError, so that a broken fixture never counts as a caught leak in the mutation tests.
    if np.array_equal(honest["y_true"], poison["y_true"]) or np.allclose(honest["probabilities"],
                                                                          poison["probabilities"], atol=1e-6):
        raise RuntimeError("the poisoned test subject did not reach predict: the check would be vacuous")
    assert [repr(c) for c in honest["fit_calls"]] == [repr(c) for c in poison["fit_calls"]], \
        "class or sample weights passed to fit depend on the test subject"
    assert (honest["normalization"] is None) == (poison["normalization"] is None)
    for a, b in zip(honest["normalization"] or (), poison["normalization"] or ()):
        _assert_same(a, b, "the normalisation statistics")
    assert sorted(honest["history"]) == sorted(poison["history"])
    for key in sorted(honest["history"], key=lambda k: k != "learning_rate"):  # the schedule first: names its leak
        _assert_same(honest["history"][key], poison["history"][key], f"history {key!r}")
    assert honest["evaluated_epoch"] == poison["evaluated_epoch"], "the evaluated epoch depends on the test subject"
    assert len(honest["weights"]) == len(poison["weights"])
    for i, (a, b) in enumerate(zip(honest["weights"], poison["weights"])):
        _assert_same(a, b, f"weight array {i}")
    return honest
