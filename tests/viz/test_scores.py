"""Per-class F1 bars of several runs: the statistics drawn, and a real PNG."""

import numpy as np
import pytest

from kerasmer.viz import f1_summary, plot_f1_bars


def test_f1_summary_ignores_absent_classes():
    mean, std, n = f1_summary([[0.5, 1.0, np.nan], [0.7, np.nan, np.nan]])
    np.testing.assert_allclose(mean[:2], [0.6, 1.0])
    assert np.isnan(mean[2]) and n.tolist() == [2, 1, 0]
    np.testing.assert_allclose(std, [np.std([0.5, 0.7], ddof=1), 0.0, 0.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        f1_summary([[1.5]])


def test_f1_bars_side_by_side(tmp_path, check_png):
    rng = np.random.default_rng(0)
    runs = {"learnet": rng.uniform(0.3, 0.9, (5, 3)), "larnet": rng.uniform(0.2, 0.6, (5, 3)),
            "seed 2": [[0.5, np.nan, 0.4]]}
    fig = plot_f1_bars(runs, ["negative", "positive", "surprise"], spread="folds", path=tmp_path / "f1.png")
    check_png(fig, tmp_path / "f1.png")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 3 * 4  # three runs x (three classes + the mean)
    np.testing.assert_allclose(heights[:4], [*runs["learnet"].mean(0), runs["learnet"].mean()], rtol=1e-6)
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "learnet (n = 5 folds)"
    with pytest.raises(ValueError, match="2 columns for 3 classes"):
        plot_f1_bars({"a": [[0.1, 0.2]]}, ["x", "y", "z"])
