"""Datasets, the synthetic micro-expression set, dynamic images and the tf.data pipeline.

Example:
    >>> from kerasmer.data import make_synthetic, read_dataset, make_dataset  # doctest: +SKIP
    >>> df = read_dataset("casme2", make_synthetic("/tmp/kerasmer_syn"))  # doctest: +SKIP
    >>> ds = make_dataset(df, modality="dynamic_image", input_shape=(112, 112, 3),
    ...                   class_names=["negative", "positive", "surprise"], training=True)  # doctest: +SKIP
"""

# Layout, in the order data flows: readers/ (annotations as distributed, their documented fixes, label
# schemes) -> preprocess/ (face crop, apex, samplers, dynamic images, optical flow; arrays in, arrays out)
# -> pipeline/ (row -> model input, augmentation, preprocessing cache, tf.data); synthetic/ writes a
# CASME II-layout set for tests and tutorials.  Nothing here imports kerasmer.models: a model's pipeline
# options reach make_dataset_for_model through a lookup the registry installs (pipeline/model_spec.py).
from kerasmer.data.schema import COLUMNS, EXTRA_COLUMNS, AnnotationError
from kerasmer.data.readers import list_datasets, read_dataset, register_reader
from kerasmer.data.readers.fixes import apply_fixes, load_fixes
from kerasmer.data.readers.labels import composite, map_labels
from kerasmer.data.preprocess.apex import clip_span, resolve_apex, spot_apex
from kerasmer.data.preprocess.dynamic_image import dynamic_image, rank_pooling_coefficients
from kerasmer.data.preprocess.face import FaceCropper, NoFaceError
from kerasmer.data.preprocess.flow import flow_input, optical_flow, optical_strain
from kerasmer.data.preprocess.samplers import (
    interpolate, sample_apex, sample_centered, sample_onset_apex, sample_uniform,
)
from kerasmer.data.pipeline import (
    INPUT_BUILDERS, build_input, clear_input_cache, fit_normalization, load_clip, make_dataset,
    make_dataset_for_model, make_input_builder, model_input_options, pipeline_options, preprocess_cache,
    register_input_builder, sample_frame_numbers,
)
from kerasmer.data.pipeline.augment import DEFAULT_AUGMENT, SHALLOW_AUGMENT, make_flow_augment
from kerasmer.data.pipeline.cache import PreprocessCache
from kerasmer.data.pipeline.inputs import flow_builder, make_flow_builder
from kerasmer.data.synthetic import EXPRESSION_AUS, make_synthetic
from kerasmer.data.synthetic.video import make_synthetic_video
from kerasmer.data.preflight import FrameError, preflight
from kerasmer.data.readers._mismatch import POLICIES as MISMATCH_POLICIES

__all__ = [
    "AnnotationError", "COLUMNS", "EXPRESSION_AUS", "EXTRA_COLUMNS", "INPUT_BUILDERS", "build_input",
    "apply_fixes", "clear_input_cache", "composite", "dynamic_image", "fit_normalization", "list_datasets",
    "load_clip", "load_fixes", "make_dataset", "map_labels",
    "make_synthetic", "rank_pooling_coefficients", "read_dataset", "register_input_builder",
    "register_reader", "sample_frame_numbers",
]
__all__ += [
    "FaceCropper", "NoFaceError", "PreprocessCache", "clip_span", "flow_builder", "flow_input", "interpolate",
    "make_flow_augment", "make_flow_builder", "optical_flow", "optical_strain", "pipeline_options", "resolve_apex",
    "sample_apex", "sample_centered", "sample_onset_apex", "sample_uniform", "spot_apex",
]
__all__ += [
    "DEFAULT_AUGMENT", "SHALLOW_AUGMENT", "make_dataset_for_model", "make_input_builder", "model_input_options",
    "preprocess_cache",
]
__all__ += ["FrameError", "MISMATCH_POLICIES", "preflight"]
__all__ += ["make_synthetic_video"]
