"""Helpers of the viz tests: read a written PNG back and check it is a real picture of the expected size."""

import matplotlib.image
import numpy as np
import pytest

from kerasmer.viz._figure import DPI


@pytest.fixture
def check_png():
    """``check_png(fig, path)``: the PNG exists, is figsize x DPI pixels, and is not blank (pixel variance)."""

    def check(fig, path):
        assert path.is_file(), f"{path} was not written"
        pixels = matplotlib.image.imread(path)
        width, height = fig.get_size_inches() * DPI
        assert pixels.shape[:2] == (round(height), round(width)), (pixels.shape, width, height)
        rgb = pixels[..., :3]
        assert rgb.var() > 1e-3, f"{path} is blank (pixel variance {rgb.var():.2e})"
        # more than two colours: something besides text on a background was drawn
        assert len(np.unique(rgb.reshape(-1, 3).round(2), axis=0)) > 20
        return pixels

    return check
