"""Pictures of the inputs: optical flow (HSV), optical strain (heat map), the apex-spotting curve, a clip montage.

viz takes arrays: ``kerasmer.data.preprocess.flow`` computes the flow and strain, ``...preprocess.apex`` the
spotting curve and the spotted apex, ``...preprocess.dynamic_image`` the dynamic image.

Example:
    >>> from kerasmer.data.preprocess.flow import optical_flow, optical_strain  # doctest: +SKIP
    >>> flow = optical_flow(onset, apex)                                       # doctest: +SKIP
    >>> fig = plot_flow(flow, image=onset, path="flow.png")                    # doctest: +SKIP
    >>> fig = plot_strain(optical_strain(flow), image=onset, path="strain.png")  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure

from kerasmer.viz._figure import display_image, finish


def flow_to_rgb(flow, *, max_magnitude: float | None = None) -> np.ndarray:
    """A flow field as an RGB image in the usual HSV coding: hue = direction, brightness = magnitude.

    Direction 0 (u > 0, rightwards) is red; angles grow with image coordinates (v > 0 is downwards, so
    downwards is hue 1/4, yellow-green; leftwards cyan; upwards violet).  Saturation is 1.

    Args:
        flow: ``(H, W, 2)`` displacements ``(u, v)`` in pixels.
        max_magnitude: the magnitude drawn at full brightness; default the field's largest (a still field is black).

    Returns:
        ``(H, W, 3)`` float32 RGB in [0, 1].

    Example:
        >>> flow_to_rgb(np.tile([1.0, 0.0], (2, 2, 1)))[0, 0].tolist()
        [1.0, 0.0, 0.0]
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow_to_rgb: flow must have shape (H, W, 2), got {flow.shape}")
    if not np.all(np.isfinite(flow)):
        raise ValueError("flow_to_rgb: the flow holds NaN or infinite values")
    u, v = flow[..., 0], flow[..., 1]
    magnitude = np.hypot(u, v)
    top = float(magnitude.max()) if max_magnitude is None else float(max_magnitude)
    if top < 0:
        raise ValueError(f"flow_to_rgb: max_magnitude must be >= 0, got {max_magnitude!r}")
    hue = np.mod(np.arctan2(v, u), 2 * np.pi) / (2 * np.pi)
    value = np.clip(magnitude / top, 0, 1) if top > 0 else np.zeros_like(magnitude)
    return hsv_to_rgb(np.stack([hue, np.ones_like(hue), value], axis=-1)).astype(np.float32)


def _wheel(size: int = 64) -> np.ndarray:
    """The colour key: the HSV coding of a radial field, black at the centre."""
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j].astype(np.float32)
    rgb = flow_to_rgb(np.stack([xx, yy], axis=-1), max_magnitude=1.0)
    rgb[np.hypot(xx, yy) > 1] = 1.0
    return rgb


def _show_input(ax, image, who):
    ax.imshow(display_image(image, who), cmap="gray")
    ax.set_title("frame", fontsize=8)
    ax.set_axis_off()


def plot_flow(flow, *, image=None, max_magnitude: float | None = None, path=None, title: str = "optical flow"):
    """Optical flow as an HSV image, with its colour key (and the frame beside it when given).

    Args:
        flow: ``(H, W, 2)`` flow (``kerasmer.data.preprocess.flow.optical_flow``).
        image: the frame the flow starts from (e.g. the onset), shown on the left.
        max_magnitude: see :func:`flow_to_rgb`.
        path: save the figure here (PNG) if given.
        title: figure title.

    Returns:
        The matplotlib Figure.

    Example:
        >>> fig = plot_flow(optical_flow(onset, apex), image=onset, path="flow.png")  # doctest: +SKIP
    """
    rgb = flow_to_rgb(flow, max_magnitude=max_magnitude)
    top = float(np.hypot(*np.moveaxis(np.asarray(flow, np.float32), -1, 0)).max())
    panels = 3 if image is not None else 2
    fig = Figure(figsize=(3.2 * panels - 1.6, 3.4))
    axes = fig.subplots(1, panels, gridspec_kw={"width_ratios": [2] * (panels - 1) + [1]})
    if image is not None:
        _show_input(axes[0], image, "plot_flow")
    axes[-2].imshow(rgb)
    axes[-2].set_title(f"hue = direction, brightness = magnitude (max {top:.2g} px)", fontsize=7)
    axes[-2].set_axis_off()
    axes[-1].imshow(_wheel())
    axes[-1].set_title("colour key", fontsize=7)
    axes[-1].set_axis_off()
    fig.suptitle(title, fontsize=10)
    return finish(fig, path)


def plot_strain(strain, *, image=None, path=None, title: str = "optical strain"):
    """Optical strain magnitude as a heat map (beside the frame when given).

    Args:
        strain: ``(H, W)`` non-negative strain (``kerasmer.data.preprocess.flow.optical_strain``).
        image: the frame it was computed from, shown on the left.
        path: save the figure here (PNG) if given.
        title: figure title.

    Returns:
        The matplotlib Figure.

    Example:
        >>> fig = plot_strain(optical_strain(flow), image=onset, path="strain.png")  # doctest: +SKIP
    """
    strain = np.asarray(strain, np.float32)
    if strain.ndim != 2 or not np.all(np.isfinite(strain)):
        raise ValueError(f"plot_strain: strain must be a finite (H, W) map, got shape {strain.shape}")
    panels = 2 if image is not None else 1
    fig = Figure(figsize=(3.6 * panels, 3.4))
    axes = np.atleast_1d(fig.subplots(1, panels))
    if image is not None:
        _show_input(axes[0], image, "plot_strain")
    im = axes[-1].imshow(strain, cmap="inferno", vmin=0)
    axes[-1].set_axis_off()
    axes[-1].set_title(f"strain magnitude (max {strain.max():.2g})", fontsize=8)
    fig.colorbar(im, ax=axes[-1], fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    return finish(fig, path)


def plot_apex_curve(curve, *, annotated: int | None = None, spotted: int | None = None, raw=None,
                    first_frame: int = 0, path=None, title: str = "apex spotting"):
    """The apex-spotting curve with the annotated and the spotted apex marked.

    Args:
        curve: ``(T,)`` motion curve relative to the onset (``spot_apex(..., return_curve=True)``'s smoothed one).
        annotated: the annotated apex, as an index into ``curve``.
        spotted: the spotted apex, as an index into ``curve``.
        raw: the unsmoothed curve (``apex_curve``), drawn thin behind it.
        first_frame: the frame number of ``curve[0]`` (the onset), so the axis reads frame numbers.
        path: save the figure here (PNG) if given.
        title: figure title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: an empty curve, or an apex outside it.

    Example:
        >>> apex, curve = spot_apex(frames, return_curve=True)                        # doctest: +SKIP
        >>> fig = plot_apex_curve(curve, annotated=12, spotted=apex, path="apex.png")  # doctest: +SKIP
    """
    curve = np.asarray(curve, np.float32)
    if curve.ndim != 1 or len(curve) == 0:
        raise ValueError(f"plot_apex_curve: curve must be a non-empty (T,) array, got shape {curve.shape}")
    for name, index in (("annotated", annotated), ("spotted", spotted)):
        if index is not None and not 0 <= int(index) < len(curve):
            raise ValueError(f"plot_apex_curve: {name} apex {index} is outside the curve's 0..{len(curve) - 1}")
    frames = np.arange(len(curve)) + int(first_frame)
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    if raw is not None:
        ax.plot(frames, np.asarray(raw, np.float32), color="0.6", lw=0.8, label="raw")
    ax.plot(frames, curve, color="C0", lw=1.8, label="curve")
    if annotated is not None:
        ax.axvline(frames[int(annotated)], color="C2", ls="--", lw=1.5, label=f"annotated apex ({frames[annotated]})")
    if spotted is not None:
        ax.axvline(frames[int(spotted)], color="C3", lw=1.5, label=f"spotted apex ({frames[spotted]})")
    ax.set_xlabel("frame")
    ax.set_ylabel("motion relative to onset (px)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return finish(fig, path)


def plot_clip_montage(frames, *, frame_numbers=None, apex: int | None = None, dynamic=None, max_frames: int = 8,
                      path=None, title: str = "clip, onset to offset"):
    """A montage of the clip from onset to offset, with the dynamic image beside it.

    Args:
        frames: ``(T, H, W[, C])`` frames, onset first, offset last.
        frame_numbers: the frame number of each frame (default 0..T-1), for the panel titles.
        apex: the apex as an index into ``frames``; it is always among the panels, titled "apex".
        dynamic: the clip's dynamic image (``kerasmer.data.preprocess.dynamic_image.dynamic_image``), shown
            last when given.
        max_frames: at most this many frames, evenly spaced with the onset and the offset.
        path: save the figure here (PNG) if given.
        title: figure title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: no frame, a bad shape, an apex outside the clip, ``max_frames`` < 2.

    Example:
        >>> fig = plot_clip_montage(clip, apex=12, dynamic=dynamic_image(clip), path="montage.png")  # doctest: +SKIP
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"plot_clip_montage: frames must be (T, H, W[, C]) with T >= 1, got shape {frames.shape}")
    if max_frames < 2:
        raise ValueError(f"plot_clip_montage: max_frames must be >= 2, got {max_frames}")
    numbers = list(range(len(frames))) if frame_numbers is None else [int(n) for n in frame_numbers]
    if len(numbers) != len(frames):
        raise ValueError(f"plot_clip_montage: {len(numbers)} frame numbers for {len(frames)} frames")
    if apex is not None and not 0 <= int(apex) < len(frames):
        raise ValueError(f"plot_clip_montage: apex {apex} is outside the clip's 0..{len(frames) - 1}")
    picks = sorted(set(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int).tolist())
                   | ({int(apex)} if apex is not None else set()))
    panels = len(picks) + (dynamic is not None)
    fig = Figure(figsize=(1.8 * panels, 2.3))
    axes = np.atleast_1d(fig.subplots(1, panels))
    for ax, i in zip(axes, picks):
        ax.imshow(display_image(frames[i], "plot_clip_montage"), cmap="gray")
        role = "onset" if i == 0 else "offset" if i == len(frames) - 1 else "apex" if i == apex else ""
        ax.set_title(f"{role} {numbers[i]}".strip() if role else f"frame {numbers[i]}", fontsize=7,
                     color="C3" if i == apex else "black")
        ax.set_axis_off()
    if dynamic is not None:
        axes[-1].imshow(display_image(dynamic, "plot_clip_montage"), cmap="gray")
        axes[-1].set_title("dynamic image", fontsize=7)
        axes[-1].set_axis_off()
    fig.suptitle(title, fontsize=9)
    return finish(fig, path)


__all__ = ["flow_to_rgb", "plot_apex_curve", "plot_clip_montage", "plot_flow", "plot_strain"]
