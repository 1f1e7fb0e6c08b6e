"""From annotation rows to ``tf.data`` batches.

* :mod:`~kerasmer.data.pipeline.inputs`: decoding and the input builder of each
  modality (row → one model input).
* :mod:`~kerasmer.data.pipeline.augment`: seeded, stateless training augmentation.
* :mod:`~kerasmer.data.pipeline.cache`: the on-disk preprocessing cache.
* :mod:`~kerasmer.data.pipeline.tfdata`: in-process memo, normalization and
  :func:`make_dataset`.
* :mod:`~kerasmer.data.pipeline.epochs`: what a seed draws for one epoch (order,
  class balance, augmentation), and many epochs in one dataset.
* :mod:`~kerasmer.data.pipeline.model_spec`: a model's pipeline options by
  name (:func:`make_dataset_for_model`), through a lookup the model registry installs.

The names ``kerasmer.data.pipeline`` exported when it was one module are
re-exported here.
"""

from kerasmer.data.pipeline.augment import DEFAULT_AUGMENT
from kerasmer.data.pipeline.inputs import (
    APEX_CHOICES, DECODE_STATS, INPUT_BUILDERS, SAMPLER_CHOICES, decode_frame, load_clip, make_input_builder,
    register_input_builder, sample_frame_numbers,
)
from kerasmer.data.pipeline.tfdata import (
    BALANCE_CHOICES, build_input, clear_input_cache, epoch_draws, fit_normalization, make_dataset, pipeline_options,
    preprocess_cache,
)
from kerasmer.data.pipeline.model_spec import make_dataset_for_model, model_input_options, set_model_spec_lookup

__all__ = [
    "APEX_CHOICES", "BALANCE_CHOICES", "DECODE_STATS", "DEFAULT_AUGMENT", "INPUT_BUILDERS", "SAMPLER_CHOICES",
    "epoch_draws",
    "build_input", "clear_input_cache", "decode_frame", "fit_normalization", "load_clip", "make_dataset",
    "make_dataset_for_model", "make_input_builder", "model_input_options", "pipeline_options", "preprocess_cache",
    "register_input_builder", "sample_frame_numbers", "set_model_spec_lookup",
]
