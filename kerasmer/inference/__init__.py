"""From a video or a folder of frames to micro-expression predictions: face tracking, spotting, recognition.

Example:
    >>> from kerasmer.inference import predict_video  # doctest: +SKIP
    >>> df = predict_video("s01.avi", "saved_models/learnet", out="pred")  # doctest: +SKIP

Modules, in the order the data flows: ``source`` (the video or frame folder, checked), ``model`` (the
exported or ``.keras`` model and what it must be fed), ``tracking`` (one face crop per window),
``recognise`` (the model input of an interval, as training builds it), ``pipeline`` (the run and its time
split), ``outputs`` (the files of ``--out``).
"""

from kerasmer.inference.model import DEFAULT_MODEL_FPS, ServedModel, load_served_model
from kerasmer.inference.outputs import annotate_video, write_outputs
from kerasmer.inference.pipeline import STAGES, VideoResult, parse_interval, predict_video, run_video
from kerasmer.inference.recognise import interval_input, resample_positions
from kerasmer.inference.source import FrameSource, InferenceError, open_source
from kerasmer.inference.tracking import FaceTracker, FaceWindow, probe_face

__all__ = [
    "DEFAULT_MODEL_FPS", "FaceTracker", "FaceWindow", "FrameSource", "InferenceError", "STAGES", "ServedModel",
    "VideoResult", "annotate_video", "interval_input", "load_served_model", "open_source", "parse_interval",
    "predict_video", "probe_face", "resample_positions", "run_video", "write_outputs",
]
