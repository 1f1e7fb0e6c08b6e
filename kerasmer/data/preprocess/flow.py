"""Optical flow and optical strain between two frames, and the ``(u, v, strain)`` image made of them.

The field's standard hand-crafted input for micro-expressions (OFF-ApexNet,
STSTNet, ...) is the optical flow between the onset and the apex frame, with
the optical strain computed from it: a 3-channel image ``(u, v, strain)``.

Methods:

* ``"farneback"``: dense polynomial-expansion flow, OpenCV main.
* ``"dis"``: Dense Inverse Search, OpenCV main; the fastest.
* ``"tvl1"``: Dual TV-L1, the one most MER papers use; it lives only in
  ``opencv-contrib`` (``cv2.optflow``), which replaces ``opencv-python-headless``.

The ``"flow"`` input builder (which frames, face crop, apex) is
:func:`kerasmer.data.pipeline.inputs.make_flow_builder`, and its augmentation
:func:`kerasmer.data.pipeline.augment.make_flow_augment`; this module depends on
no other part of :mod:`kerasmer.data`, so apex spotting can use it.
"""

from __future__ import annotations

import cv2
import numpy as np

from kerasmer.data.preprocess._frames import to_gray_u8

FLOW_METHODS = ("farneback", "dis", "tvl1")
_FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "farneback", **params) -> np.ndarray:
    """Dense optical flow from frame ``a`` to frame ``b``.

    Args:
        a: first frame, ``(H, W)`` or ``(H, W, C)``; colour is converted to grey.
        b: second frame of the same height and width.
        method: ``"farneback"``, ``"dis"`` or ``"tvl1"`` (needs opencv-contrib).
        **params: method options: for farneback the keyword arguments of
            ``cv2.calcOpticalFlowFarneback`` (``winsize``, ``levels``, ...); for
            dis ``preset`` (``"ultrafast"``, ``"fast"``, ``"medium"``); for tvl1
            the arguments of ``cv2.optflow.DualTVL1OpticalFlow_create``.

    Returns:
        ``(H, W, 2)`` float32 array; channel 0 is the horizontal displacement
        ``u`` (pixels, positive to the right), channel 1 the vertical ``v``
        (positive downwards).

    Raises:
        ValueError: unknown method or frames of different sizes.
        ImportError: ``"tvl1"`` without opencv-contrib.

    Example:
        >>> a = np.zeros((64, 64), np.uint8); a[20:40, 20:40] = 255
        >>> b = np.roll(a, 2, axis=1)
        >>> flow = optical_flow(a, b)
        >>> flow.shape, bool(flow[30, 30, 0] > 0.5)
        ((64, 64, 2), True)
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"optical_flow: method must be one of {FLOW_METHODS}, got {method!r}")
    ga, gb = to_gray_u8(a), to_gray_u8(b)
    if ga.shape != gb.shape:
        raise ValueError(f"optical_flow: frames differ in size: {ga.shape} and {gb.shape}")
    if method == "farneback":
        unknown = set(params) - set(_FARNEBACK)
        if unknown:
            raise ValueError(f"optical_flow(method='farneback'): unknown option(s) {sorted(unknown)}; "
                             f"known {sorted(_FARNEBACK)}")
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, **{**_FARNEBACK, **params})
    elif method == "dis":
        preset = params.pop("preset", "medium")
        if params:
            raise ValueError(f"optical_flow(method='dis'): unknown option(s) {sorted(params)}; known ['preset']")
        if preset not in _DIS_PRESETS:
            raise ValueError(f"optical_flow(method='dis'): preset must be one of {list(_DIS_PRESETS)}, got {preset!r}")
        flow = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset]).calc(ga, gb, None)
    else:
        if not hasattr(cv2, "optflow"):
            raise ImportError(
                "optical_flow(method='tvl1') needs OpenCV's contrib modules (cv2.optflow), which "
                "opencv-python-headless lacks: pip uninstall opencv-python-headless && "
                "pip install 'opencv-contrib-python-headless<5'; or use method='farneback' or 'dis'"
            )
        flow = cv2.optflow.DualTVL1OpticalFlow_create(**params).calc(ga, gb, None)
    return np.asarray(flow, np.float32)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Magnitude of the optical strain tensor of a flow field.

    The strain tensor is ``e = 1/2 (grad(w) + grad(w)^T)`` for the displacement
    ``w = (u, v)``; its magnitude is
    ``sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2)`` with ``e_xx = du/dx``,
    ``e_yy = dv/dy``, ``e_xy = 1/2 (du/dy + dv/dx)`` (central differences).
    Rigid translation has zero strain; skin stretching and compressing does not.

    Args:
        flow: ``(H, W, 2)`` flow (u, v).

    Returns:
        ``(H, W)`` float32, non-negative.

    Example:
        >>> yy, xx = np.mgrid[0:8, 0:8].astype(np.float32)
        >>> s = optical_strain(np.stack([0.1 * xx, np.zeros_like(xx)], -1))  # uniform stretch
        >>> bool(np.allclose(s, 0.1))
        True
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[-1] != 2 or min(flow.shape[:2]) < 2:
        raise ValueError(f"optical_strain: flow must have shape (H, W, 2) with H, W >= 2, got {flow.shape}")
    u_y, u_x = np.gradient(flow[..., 0])
    v_y, v_x = np.gradient(flow[..., 1])
    e_xy = 0.5 * (u_y + v_x)
    return np.sqrt(u_x**2 + v_y**2 + 2.0 * e_xy**2).astype(np.float32)


def resize_flow(flow: np.ndarray, size) -> np.ndarray:
    """Resize a flow field to ``size`` = ``(height, width)``, rescaling the displacements with it.

    A displacement of 4 pixels at 224 px is 2 pixels at 112 px; plain image
    resizing would keep 4.
    """
    h, w = flow.shape[:2]
    out_h, out_w = int(size[0]), int(size[1])
    if (out_h, out_w) == (h, w):
        return flow.astype(np.float32, copy=False)
    interp = cv2.INTER_AREA if out_h * out_w < h * w else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(flow, np.float32), (out_w, out_h), interpolation=interp)
    out[..., 0] *= out_w / w
    out[..., 1] *= out_h / h
    return out


def flow_input(
    onset: np.ndarray,
    apex: np.ndarray,
    *,
    method: str = "farneback",
    size=None,
    normalize: str = "clip",
    remove_global: bool = False,
    **params,
) -> np.ndarray:
    """The 3-channel ``(u, v, strain)`` input between the onset and the apex frame.

    Args:
        onset: onset frame, ``(H, W)`` or ``(H, W, C)``.
        apex: apex frame, same size.
        method: flow method (see :func:`optical_flow`).
        size: output ``(height, width)``; the flow is computed at the frames'
            own resolution and resized (displacements rescaled); ``None`` keeps it.
        normalize: ``"clip"`` divides u and v by their common largest absolute
            value (so they lie in [-1, 1] and keep their direction) and the
            strain by its maximum ([0, 1]); ``"none"`` keeps pixels.  Per-clip
            scaling also stretches a nearly still clip's solver noise to full
            range; use ``"none"`` with dataset-level normalisation to avoid that.
        remove_global: subtract the median displacement first, cancelling a
            small rigid head translation between the two frames.
        **params: passed to :func:`optical_flow`.

    Returns:
        ``(H, W, 3)`` float32: channels u, v, strain.

    Example:
        >>> x = flow_input(onset_frame, apex_frame, size=(112, 112))  # doctest: +SKIP
        >>> x.shape  # doctest: +SKIP
        (112, 112, 3)
    """
    if normalize not in ("clip", "none"):
        raise ValueError(f"flow_input: normalize must be 'clip' or 'none', got {normalize!r}")
    flow = optical_flow(onset, apex, method=method, **params)
    if remove_global:
        flow = flow - np.median(flow.reshape(-1, 2), axis=0)
    strain = optical_strain(flow)
    if size is not None:
        out_h, out_w = int(size[0]), int(size[1])
        h, w = strain.shape
        flow = resize_flow(flow, (out_h, out_w))
        # Strain is a ratio (pixels per pixel): an isotropic resize does not change it.
        interp = cv2.INTER_AREA if out_h * out_w < h * w else cv2.INTER_LINEAR
        strain = cv2.resize(strain, (out_w, out_h), interpolation=interp)
    if normalize == "clip":
        flow = flow / max(float(np.abs(flow).max()), 1e-6)
        strain = strain / max(float(strain.max()), 1e-6)
    return np.concatenate([flow, strain[..., None]], axis=-1).astype(np.float32)


__all__ = ["FLOW_METHODS", "flow_input", "optical_flow", "optical_strain", "resize_flow"]
