"""The spotting figure: the curve, a shaded span and a label per interval, gaps where there was no face."""

import numpy as np
import pytest

from kerasmer.viz.spotting import plot_spotting


def test_plot_spotting_draws_each_interval_with_its_label(tmp_path):
    curve = np.r_[np.zeros(100), np.hanning(40), np.zeros(60), np.full(50, np.nan)]
    threshold = np.r_[np.full(200, 0.4), np.full(50, np.nan)]
    intervals = [{"onset": 105, "apex": 120, "offset": 135, "label": "surprise", "score": 0.81},
                 {"onset": 20, "apex": 30, "offset": 40, "label": "negative", "score": 0.5}]
    path = tmp_path / "curve.png"
    fig = plot_spotting(curve, 100.0, intervals, threshold=threshold, no_face=[(200, 250)],
                        truth=[{"onset": 100, "offset": 140}], path=path)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["negative 0.50", "surprise 0.81"]
    assert ax.get_xlabel() == "time (s)" and ax.get_xlim()[1] == pytest.approx(2.49)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no temporary left


@pytest.mark.parametrize("kwargs, match", [({"fps": 0}, "fps must be positive"),
                                           ({"curve": np.zeros((3, 3))}, "one-dimensional")])
def test_plot_spotting_rejects_bad_arguments(kwargs, match):
    args = {"curve": np.zeros(10), "fps": 25.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_spotting(args["curve"], args["fps"], [])
