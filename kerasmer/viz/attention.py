"""Pictures of what a model attends to: soft masks per stage, spatio-temporal attention, Grad-CAM.

* :func:`plot_attention_masks`: the residual attention family's soft masks per stage (Attention-56/92,
  EmoResNet, LARNet; LARNet Figs. 3-7) with any of the mixed, channel and spatial activations, and
  Micro-Attention's maps (Wang et al. 2020, Fig. 4), each overlaid on the input.
* :func:`plot_spatiotemporal_attention`: MERANet's channel attention and spatio-temporal attention per block,
  the temporal axis as a strip of time steps (Gajjala et al. 2021, §3).
* :func:`plot_grad_cam`: Grad-CAM on an image, or per time step and as a time profile on a clip.

The arrays come from :mod:`kerasmer.viz.saliency`.  Figures use matplotlib's object API and need no display.

Example:
    >>> masks = layer_outputs(model, x, mask_layers)                            # doctest: +SKIP
    >>> fig = plot_attention_masks(image, list(masks.values()), names=list(masks), path="masks.png")  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from kerasmer.viz._figure import display_image, finish, frame_for_step, grid, save
from kerasmer.viz.saliency import ACTIVATION_RANGES, cam_time_profile, mask_map

def _overlay(ax, image, heat, *, vmin, vmax, cmap="jet", alpha=0.5):
    """Draw ``image`` and ``heat`` over the same extent: maps at any resolution line up with the input."""
    h, w = image.shape[:2]
    ax.imshow(image, cmap="gray", extent=(0, w, h, 0), interpolation="nearest")
    im = ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax, extent=(0, w, h, 0), interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _range(maps, activation):
    lo, hi = ACTIVATION_RANGES[activation]
    if lo is None:  # unbounded (Micro-Attention): one scale for every panel, so stages compare
        lo, hi = min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)
        hi = hi if hi > lo else lo + 1e-6
    return lo, hi


def plot_attention_masks(image, masks, *, names=None, activation: str | None = "mixed", path=None,
                         title: str = "attention masks per stage"):
    """Soft masks per stage, each averaged over its channels and overlaid on the input.

    Args:
        image: the model input (H, W, C) (or a frame to show instead of it).
        masks: the masks in build order, each ``(H_i, W_i, C_i)`` or ``(H_i, W_i)``: a residual attention
            network's ``AttentionActivation`` outputs (``kerasmer.models.attention_outputs``) or
            Micro-Attention's ``(H_i, W_i, 1)`` maps (``attention_map_model``); without the batch axis.
        names: a panel title per mask (e.g. the layer names).
        activation: ``"mixed"``, ``"spatial"`` (colour scale 0..1), ``"channel"`` (-1..1, diverging) or
            ``None`` (Micro-Attention's unbounded maps: one scale over all panels).
        path: save the figure here (PNG) if given.
        title: figure title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: no mask, names that do not match the masks, or a bad mask or image shape.

    Example:
        >>> fig = plot_attention_masks(x, masks, names=layer_names, activation="spatial", path="masks.png")  # doctest: +SKIP
    """
    maps = [mask_map(m, activation) for m in masks]
    if not maps or any(m.ndim != 2 for m in maps):
        raise ValueError(f"plot_attention_masks: expected one or more (H, W[, C]) masks, got shapes "
                         f"{[np.shape(m) for m in masks]}")
    names = list(names) if names is not None else [f"mask {i + 1}" for i in range(len(maps))]
    if len(names) != len(maps):
        raise ValueError(f"plot_attention_masks: {len(names)} names for {len(maps)} masks")
    shown = display_image(image, "plot_attention_masks")
    lo, hi = _range(maps, activation)
    cmap = "RdBu_r" if activation == "channel" else "jet"
    rows, cols = grid(len(maps) + 1)
    fig = Figure(figsize=(2.4 * cols, 2.5 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    axes[0].imshow(shown, cmap="gray")
    axes[0].set_title("input", fontsize=8)
    axes[0].set_axis_off()
    for ax, m, name in zip(axes[1:], maps, names):
        im = _overlay(ax, shown, m, vmin=lo, vmax=hi, cmap=cmap)
        ax.set_title(f"{name}\n{m.shape[0]}x{m.shape[1]}, {m.min():.2f}..{m.max():.2f}", fontsize=7)
    for ax in axes[len(maps) + 1:]:
        ax.set_axis_off()
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=f"mask ({activation or 'raw'})")
    fig.suptitle(title, fontsize=10)
    return save(fig, path)  # constrained layout places the shared colorbar


def _strip(clip, steps):
    """The input frames at the centres of ``steps`` time steps, side by side: (H, steps*W[, 3])."""
    return np.concatenate([display_image(clip[frame_for_step(len(clip), steps, t)], "strip") for t in range(steps)],
                          axis=1)


def plot_spatiotemporal_attention(clip, blocks: dict, *, path=None, title: str = "MERANet attention per block"):
    """MERANet's channel attention and spatio-temporal attention of every block, time as a strip.

    Args:
        clip: the input clip (T, H, W, C).
        blocks: ``{block name: {"ca": (C,) or (1, 1, 1, C) channel weights, "st": (T', H', W'[, 1]) map}}``,
            e.g. from ``kerasmer.models.meranet.meranet_attention_outputs``; both in (0, 1) (sigmoids).
        path: save the figure here (PNG) if given.
        title: figure title.

    Returns:
        The matplotlib Figure: one row per block, the spatio-temporal map of each time step overlaid on the
        input frame at that step's centre (left), the channel weights as a strip (right).

    Raises:
        ValueError: no block, a block without ``"ca"`` and ``"st"``, or a bad clip shape.

    Example:
        >>> fig = plot_spatiotemporal_attention(clip, blocks, path="meranet.png")  # doctest: +SKIP
    """
    clip = np.asarray(clip, np.float32)
    if clip.ndim != 4 or not blocks:
        raise ValueError(f"plot_spatiotemporal_attention: expected a (T, H, W, C) clip and at least one block, "
                         f"got clip shape {clip.shape} and {len(blocks)} blocks")
    fig = Figure(figsize=(11, 1.3 * len(blocks) + 0.8))
    axes = fig.subplots(len(blocks), 2, squeeze=False, gridspec_kw={"width_ratios": [4, 1]})
    h, w = clip.shape[1:3]
    for (name, maps), (ax_st, ax_ca) in zip(blocks.items(), axes):
        if not {"ca", "st"} <= set(maps):
            raise ValueError(f"plot_spatiotemporal_attention: block {name!r} needs 'ca' and 'st' maps, "
                             f"got {sorted(maps)}")
        st = mask_map(maps["st"], None) if np.ndim(maps["st"]) == 4 else np.asarray(maps["st"], np.float32)
        if st.ndim != 3:
            raise ValueError(f"plot_spatiotemporal_attention: block {name!r}: 'st' must be (T, H, W[, 1]), "
                             f"got shape {np.shape(maps['st'])}")
        steps = st.shape[0]
        extent = (0, steps, 1, 0)
        ax_st.imshow(_strip(clip, steps), cmap="gray", extent=extent, aspect=h / w)
        ax_st.imshow(np.concatenate(list(st), axis=1), cmap="jet", alpha=0.5, vmin=0, vmax=1, extent=extent,
                     aspect=h / w, interpolation="bilinear")
        ax_st.set_xticks(np.arange(steps) + 0.5, [str(t) for t in range(steps)], fontsize=6)
        ax_st.set_yticks([])
        ax_st.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
        ca = np.asarray(maps["ca"], np.float32).reshape(-1)
        ax_ca.imshow(ca[None, :], cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax_ca.set_yticks([])
        ax_ca.tick_params(labelsize=6)
    axes[-1][0].set_xlabel("time step of the block's map (input frame at its centre)", fontsize=8)
    axes[-1][1].set_xlabel("channel", fontsize=8)
    axes[0][0].set_title("spatio-temporal attention (0..1)", fontsize=8)
    axes[0][1].set_title("channel attention (0..1)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return finish(fig, path)


def plot_grad_cam(image, cam, *, class_name: str | None = None, path=None, title: str = "Grad-CAM"):
    """Grad-CAM over an image, or over a clip per time step with the time profile below.

    Args:
        image: the input: an image (H, W, C) for a 2D model, a clip (T, H, W, C) for a 3D model.
        cam: the map from :func:`kerasmer.viz.saliency.grad_cam`: (H', W') or (T', H', W'); each is scaled by
            its maximum for display.
        class_name: the explained class, for the title.
        path: save the figure here (PNG) if given.
        title: figure title.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: a map that does not match the input's rank.

    Example:
        >>> cam = grad_cam(model, clip, cam_layer(model))                    # doctest: +SKIP
        >>> fig = plot_grad_cam(clip, cam.map, class_name="surprise", path="cam.png")  # doctest: +SKIP
    """
    cam = np.asarray(cam, np.float32)
    x = np.asarray(image, np.float32)
    if not ((cam.ndim == 2 and x.ndim in (2, 3)) or (cam.ndim == 3 and x.ndim == 4)):
        raise ValueError(f"plot_grad_cam: a (H', W') map goes with an (H, W, C) image and a (T', H', W') map with a "
                         f"(T, H, W, C) clip; got map {cam.shape} and input {x.shape}")
    peak = float(cam.max())
    scaled = cam / peak if peak > 0 else cam
    label = f"{title}: {class_name}" if class_name else title
    if cam.ndim == 2:
        shown = display_image(x, "plot_grad_cam")
        fig = Figure(figsize=(6.4, 3.4))
        ax_in, ax_cam = fig.subplots(1, 2)
        ax_in.imshow(shown, cmap="gray")
        ax_in.set_axis_off()
        ax_in.set_title("input", fontsize=8)
        im = _overlay(ax_cam, shown, scaled, vmin=0, vmax=1)
        ax_cam.set_title(f"{cam.shape[0]}x{cam.shape[1]} map, peak {peak:.3g}", fontsize=8)
        fig.colorbar(im, ax=ax_cam, fraction=0.046, pad=0.04)
        fig.suptitle(label, fontsize=10)
        return finish(fig, path)
    return _plot_grad_cam_3d(x, cam, scaled, peak, label, path)


def _plot_grad_cam_3d(clip, cam, scaled, peak, label, path):
    steps = cam.shape[0]
    fig = Figure(figsize=(max(6.0, 1.6 * steps), 4.4), layout="constrained")
    top = fig.subfigures(2, 1, height_ratios=[1.3, 1])
    axes = np.atleast_1d(top[0].subplots(1, steps))
    for t, ax in enumerate(axes):
        frame = frame_for_step(len(clip), steps, t)
        _overlay(ax, display_image(clip[frame], "plot_grad_cam"), scaled[t], vmin=0, vmax=1)
        ax.set_title(f"step {t} (frame {frame})", fontsize=7)
    ax = top[1].subplots()
    profile = cam_time_profile(cam)
    ax.plot(range(steps), profile / peak if peak > 0 else profile, "o-", lw=1.5)
    ax.set_xticks(range(steps))
    ax.set_xlabel("time step of the map")
    ax.set_ylabel("mean Grad-CAM (÷ peak)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{label} (peak {peak:.3g})", fontsize=10)
    return save(fig, path)  # constrained layout (subfigures)


__all__ = ["plot_attention_masks", "plot_grad_cam", "plot_spatiotemporal_attention"]
