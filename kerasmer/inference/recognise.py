"""Recognition of spotted (or given) intervals: the model input from the raw crops, as training builds it.

The frames onset..offset are first resampled in time to the frame rate the model was trained on (a 30 fps
clip of 0.3 s has 10 frames where the CASME II-trained model saw 61), then handed to
:func:`kerasmer.data.pipeline.inputs.input_from_frames`, the function the training pipeline's row builders
run after decoding: the model gets exactly what training fed it.  Resampling takes the nearest frame
(frames are repeated when upsampling, dropped when downsampling), so every frame the model sees is a real,
uncompressed-again video frame.
"""

from __future__ import annotations

import numpy as np

from kerasmer.data.pipeline.inputs import input_from_frames
from kerasmer.inference.model import ServedModel


def resample_positions(length: int, fps: float, model_fps: float) -> np.ndarray:
    """Positions in ``0..length-1`` of a clip recorded at ``fps`` resampled to ``model_fps`` (nearest frame).

    The clip keeps its duration: ``length`` frames at ``fps`` span ``(length - 1) / fps`` seconds, and so do
    the returned positions at ``model_fps``.

    Args:
        length: frames onset..offset.
        fps: the video's frame rate.
        model_fps: the frame rate the model was trained on.

    Returns:
        int array of positions, onset first and offset last.

    Example:
        >>> resample_positions(4, 100.0, 200.0).tolist()
        [0, 0, 1, 1, 2, 2, 3]
        >>> resample_positions(5, 200.0, 200.0).tolist()
        [0, 1, 2, 3, 4]
    """
    if length < 1:
        raise ValueError(f"resample_positions: length must be >= 1, got {length}")
    count = max(1, int(round((length - 1) * model_fps / fps)) + 1)
    return np.floor(np.linspace(0, length - 1, count) + 0.5).astype(int)


def interval_input(crops: np.ndarray, onset: int, apex: int, offset: int, served: ServedModel, fps: float,
                   *, clip_id: str | None = None) -> np.ndarray:
    """The model input of one interval of a window's face crops.

    Args:
        crops: the window's ``(T, H, W, 3)`` RGB uint8 crops.
        onset, apex, offset: frame indices into ``crops`` (offset included).
        served: the model (its modality, input shape, sampler, frame rate and flow options are used).
        fps: the video's frame rate.
        clip_id: named in errors.

    Returns:
        The float32 model input (unnormalised; :meth:`ServedModel.predict` normalises).

    Raises:
        ValueError: an interval outside the crops or with the apex outside onset..offset.

    Example:
        >>> x = interval_input(crops, 10, 25, 60, served, fps=200.0)  # doctest: +SKIP
    """
    if not 0 <= onset <= apex <= offset < len(crops):
        raise ValueError(f"{clip_id or 'interval'}: onset {onset} <= apex {apex} <= offset {offset} must hold, "
                         f"within the {len(crops)} frames")
    clip = crops[onset:offset + 1]
    positions = resample_positions(len(clip), fps, served.fps)
    apex_pos = int(np.abs(positions - (apex - onset)).argmin())
    return input_from_frames(clip[positions], served.modality, served.input_shape, apex=apex_pos,
                             sampler=served.sampler, flow=served.flow, clip_id=clip_id)


def classify(inputs: list[np.ndarray], served: ServedModel) -> np.ndarray:
    """Probabilities ``(N, classes)`` of the model inputs (an empty list gives ``(0, classes)``)."""
    if not inputs:
        return np.zeros((0, len(served.class_names)), np.float32)
    return served.predict(np.stack(inputs))


__all__ = ["classify", "interval_input", "resample_positions"]
