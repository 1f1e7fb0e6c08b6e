"""Optical flow and optical strain between two frames, and the ``"flow"`` model input.

The field's standard hand-crafted input for micro-expressions (OFF-ApexNet,
STSTNet, ...) is the optical flow between the onset and the apex frame, with
the optical strain computed from it: a 3-channel image ``(u, v, strain)``.

Methods:

* ``"farneback"``: dense polynomial-expansion flow, OpenCV main.
* ``"dis"``: Dense Inverse Search, OpenCV main; the fastest.
* ``"tvl1"``: Dual TV-L1, the one most MER papers use; it lives only in
  ``opencv-contrib`` (``cv2.optflow``), which replaces ``opencv-python-headless``.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from kerasmer.data._frames import clip_name, read_frames, to_gray_u8

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


def make_flow_builder(
    *,
    method: str = "farneback",
    apex: str = "annotated",
    face=None,
    work_size: int = 112,
    normalize: str = "clip",
    remove_global: bool = False,
):
    """A ``"flow"`` input builder ``fn(row, input_shape) -> (H, W, 3) array`` for the pipeline.

    It reads only the onset and apex frames (all frames when the apex is
    spotted), crops the face if asked (detected on the onset frame, the same
    crop for both), computes the flow at ``work_size`` or the input size,
    whichever is larger, and resizes it to ``input_shape``.

    Args:
        method: flow method, see :func:`optical_flow`.
        apex: ``"annotated"``, ``"spotted"`` or ``"middle"``, see
            :func:`kerasmer.data.apex.resolve_apex`.
        face: ``None`` (frames are already cropped, as in the datasets'
            cropped releases), a detector name (``"haar"``) or a
            :class:`~kerasmer.data.face.FaceCropper`.
        work_size: shorter side the flow is computed at; small model inputs
            (28 x 28 for STSTNet) would make sub-pixel movements invisible.
        normalize, remove_global: see :func:`flow_input`.

    Returns:
        The builder; its ``config`` attribute is a JSON-friendly dict of the
        settings (use it in the preprocessing-cache key).

    Example:
        >>> build = make_flow_builder(method="dis", face="haar")
        >>> x = build(df.iloc[0], (112, 112, 3))  # doctest: +SKIP
    """
    from kerasmer.data.face import FaceCropper  # local: face imports nothing from here, but keep flow light

    if method not in FLOW_METHODS:
        raise ValueError(f"make_flow_builder: method must be one of {FLOW_METHODS}, got {method!r}")
    if apex not in ("annotated", "spotted", "middle"):
        raise ValueError(f"make_flow_builder: apex must be 'annotated', 'spotted' or 'middle', got {apex!r}")
    if isinstance(face, str):
        face = FaceCropper(face, size=None)
    elif face is not None and not isinstance(face, FaceCropper):
        raise TypeError("make_flow_builder: face must be None, a detector name or a FaceCropper, "
                        f"got {type(face).__name__}")

    def build_flow(row, input_shape) -> np.ndarray:
        from kerasmer.data.apex import clip_span, resolve_apex

        name = clip_name(row)
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[-1] != 3:
            raise ValueError(f"clip {name}: the 'flow' input is (H, W, 3) (u, v, strain); got input_shape {shape}")
        span = clip_span(row)
        paths = list(row["frame_paths"])
        if apex == "spotted":
            clip = read_frames(paths[span.start : span.stop + 1], gray=True, clip_id=name)
            rel = resolve_apex(row, "spotted", frames=clip, method=method)
            pair = clip[[0, rel]]
        else:
            rel = resolve_apex(row, apex)
            pair = read_frames([paths[span.start], paths[span.start + rel]], gray=True, clip_id=name)
        if rel == 0:
            # Flow between a frame and itself is ~0.1 px of solver noise, which
            # normalisation would blow up to full range: return the true answer.
            warnings.warn(f"clip {name}: the apex is the onset frame, so its flow input is all zeros", stacklevel=2)
            return np.zeros(shape, np.float32)
        if face is not None:
            pair = _crop_pair(face, pair, paths[span.start : span.stop + 1], name)
        h, w = shape[:2]
        k = max(1.0, work_size / min(h, w))
        work = (round(h * k), round(w * k))
        pair = [cv2.resize(f, (work[1], work[0]), interpolation=cv2.INTER_AREA) for f in pair]
        return flow_input(pair[0], pair[1], method=method, size=(h, w), normalize=normalize,
                          remove_global=remove_global)

    face_cfg = face.config() if face is not None else None
    build_flow.config = {"modality": "flow", "method": method, "apex": apex, "face": face_cfg,
                         "work_size": work_size, "normalize": normalize, "remove_global": remove_global}
    return build_flow


def _crop_pair(face, pair, clip_paths, name):
    """Crop onset and apex with one detection; search the whole clip only if neither has a face."""
    from kerasmer.data.face import NoFaceError, apply_crop

    try:
        return face.crop_clip(pair, clip_id=name)
    except NoFaceError:
        _, det = face.find_face(read_frames(clip_paths, gray=True, clip_id=name), clip_id=name)
        m, out = face.crop_matrix(det)
        return apply_crop(pair, m, out)


def make_flow_augment(*, flip: bool = True, rotation: float = 5.0, seed: int = 0):
    """Augmentation for ``(u, v, strain)`` inputs, in TensorFlow, for ``tf.data`` maps.

    A flow field is not an image: flipping left-right must also negate u, and
    rotating must rotate the (u, v) vectors as well as move them.  Brightness
    changes have no meaning for flow (and clipping to [0, 255] would erase
    every negative displacement), so there are none.  Strain is a scalar and
    is only moved.

    Args:
        flip: random left-right flip (probability 0.5).
        rotation: largest rotation in degrees, uniform in ``[-rotation, rotation]``.
        seed: fixed part of the stateless random seed.

    Returns:
        ``apply(x, rnd) -> x``: ``x`` a ``(H, W, 3)`` float tensor, ``rnd`` an
        int scalar drawn per element and epoch (as ``make_dataset`` does with
        ``tf.data.Dataset.random``); the same ``(rnd, seed)`` gives the same transform.

    Example:
        >>> augment = make_flow_augment(rotation=5.0)  # doctest: +SKIP
        >>> ds = tf.data.Dataset.zip((xs, tf.data.Dataset.random(seed=0))).map(augment)  # doctest: +SKIP
    """
    import math

    import keras
    import tensorflow as tf

    max_angle = math.radians(float(rotation))

    def apply(x, rnd):
        s = tf.stack([tf.cast(rnd, tf.int64), tf.constant(seed, tf.int64)])
        u, v, strain = x[..., 0], x[..., 1], x[..., 2]
        if flip:
            do = tf.random.stateless_uniform((), seed=s + [0, 1]) < 0.5
            u = tf.where(do, -tf.reverse(u, axis=[1]), u)
            v = tf.where(do, tf.reverse(v, axis=[1]), v)
            strain = tf.where(do, tf.reverse(strain, axis=[1]), strain)
        x = tf.stack([u, v, strain], axis=-1)
        if max_angle > 0:
            angle = tf.random.stateless_uniform((), seed=s + [0, 2], minval=-max_angle, maxval=max_angle)
            h, w = tf.cast(tf.shape(x)[0], tf.float32), tf.cast(tf.shape(x)[1], tf.float32)
            cos, sin = tf.cos(angle), tf.sin(angle)
            cx, cy = (w - 1) / 2, (h - 1) / 2
            # output pixel -> input pixel is a rotation by +angle about the centre, so a
            # displacement d at the input is R(-angle) d at the output
            transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
            x = keras.ops.image.affine_transform(x[None], transform[None], interpolation="bilinear",
                                                 fill_mode="reflect", data_format="channels_last")[0]
            u, v = x[..., 0], x[..., 1]
            x = tf.stack([cos * u + sin * v, -sin * u + cos * v, x[..., 2]], axis=-1)
        return x

    return apply


flow_builder = make_flow_builder()
"""The default ``"flow"`` builder: Farneback, annotated apex, frames used as given."""

__all__ = ["FLOW_METHODS", "flow_builder", "flow_input", "make_flow_augment", "make_flow_builder", "optical_flow",
           "optical_strain", "resize_flow"]
