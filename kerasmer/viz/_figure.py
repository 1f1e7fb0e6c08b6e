"""Helpers shared by the viz figures: the saving rule, the display of a model input, frame picking."""

from __future__ import annotations

import numpy as np

from kerasmer.core.atomic import atomic_save_figure

# Every figure is saved at this resolution, without bbox cropping, so a PNG's size is figsize x DPI (the tests
# check it).
DPI = 100


def save(fig, path):
    """When ``path`` is given, save ``fig`` as a PNG atomically (kerasmer.core.atomic); returns ``fig``."""
    if path is not None:
        atomic_save_figure(fig, path, dpi=DPI)
    return fig


def finish(fig, path):
    """Lay the figure out (tight layout), then :func:`save` it; returns ``fig``."""
    fig.tight_layout()
    return save(fig, path)


def display_image(image, who: str) -> np.ndarray:
    """A model input or a frame as something ``imshow`` draws: (H, W, 3) or (H, W) in [0, 1].

    Normalised inputs, dynamic images in [0, 255] and uint8 frames are all min-max scaled; one channel is
    drawn grey, three as RGB, any other count (a flow input, EmoResNet's feature map) as the channel mean.
    """
    x = np.asarray(image, np.float32)
    if x.ndim == 3 and x.shape[-1] != 3:
        x = x.mean(axis=-1)
    if x.ndim not in (2, 3):
        raise ValueError(f"{who}: expected an (H, W) or (H, W, C) image, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{who}: the image holds NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def frame_for_step(num_frames: int, num_steps: int, step: int) -> int:
    """The input frame at the centre of time step ``step`` of a map with ``num_steps`` steps over ``num_frames``.

    Example:
        >>> [frame_for_step(16, 4, t) for t in range(4)]
        [2, 6, 10, 14]
    """
    return min(num_frames - 1, int((step + 0.5) * num_frames / num_steps))


def grid(n: int, max_cols: int = 6) -> tuple[int, int]:
    """Rows and columns for ``n`` panels, at most ``max_cols`` wide."""
    cols = max(1, min(n, max_cols))
    return -(-n // cols), cols
