"""The run plots: a confusion matrix drawn from its counts, training curves on a 1-based integer epoch axis."""

import numpy as np
import pytest

from kerasmer.viz import plot_confusion_matrix, plot_training_curves
from kerasmer.viz.plots import epoch_ticks


def _visible_ticks(ax):
    lo, hi = ax.get_xlim()
    return [t for t in ax.get_xticks() if lo <= t <= hi]


def test_epoch_ticks_are_integers_from_one():
    assert epoch_ticks(1) == [1] and epoch_ticks(3) == [1, 2, 3]
    assert epoch_ticks(30) == [1, 5, 10, 15, 20, 25, 30]
    for n in (1, 2, 7, 11, 29, 100, 1234):
        ticks = epoch_ticks(n)
        assert ticks[0] == 1 and ticks[-1] <= n and len(ticks) <= 11 and ticks == sorted(set(ticks))
        assert all(isinstance(t, int) for t in ticks)


@pytest.mark.parametrize("epochs", [3, 30])
def test_training_curves_have_a_one_based_integer_epoch_axis(tmp_path, check_png, epochs):
    rng = np.random.default_rng(0)
    histories = {f"{k:02d}": {"loss": list(1 / np.arange(1, epochs + 1)), "accuracy": list(rng.random(epochs)),
                              "val_loss": list(1.2 / np.arange(1, epochs + 1) + 0.1),
                              "val_accuracy": list(rng.random(epochs))} for k in (1, 2)}
    histories["02"] = {k: v[: max(1, epochs - 1)] for k, v in histories["02"].items()}  # early-stopped fold
    fig = plot_training_curves(histories, selected={"01": 2, "02": 1}, path=tmp_path / "curves.png")
    check_png(fig, tmp_path / "curves.png")
    for ax in fig.axes:
        ticks = _visible_ticks(ax)
        assert ticks[0] == 1 and all(float(t).is_integer() for t in ticks), ticks
        assert ax.get_xlim()[0] > 0  # no epoch 0, no ticks at 0.25
        assert max(ticks) == epochs and ax.get_xlabel() == "epoch"
    # the validation curve of fold 01 is drawn at epochs 1..E, and its selected epoch's dot at (2, val_loss[1])
    lines = fig.axes[0].get_lines()
    assert list(lines[1].get_xdata()) == list(range(1, epochs + 1))
    dot = lines[2]
    assert list(dot.get_xdata()) == [2] and dot.get_ydata()[0] == pytest.approx(histories["01"]["val_loss"][1])


def test_confusion_matrix_draws_counts_and_row_shares(tmp_path, check_png):
    cm = [[5, 1, 0], [2, 4, 0], [0, 0, 0]]  # a class never seen: its row stays at 0 %, not NaN
    fig = plot_confusion_matrix(cm, ["negative", "positive", "surprise"], path=tmp_path / "cm.png")
    check_png(fig, tmp_path / "cm.png")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts[:2] == ["5\n83%", "1\n17%"] and texts[3] == "2\n33%" and texts[8] == "0\n0%"
    image = ax.get_images()[0].get_array()
    assert image[0, 0] == pytest.approx(5 / 6) and image[2, 2] == 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["negative", "positive", "surprise"]
    with pytest.raises(ValueError, match="3 classes"):
        plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b", "c"])
