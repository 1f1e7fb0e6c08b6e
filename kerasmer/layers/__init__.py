"""Custom, serializable Keras layers and layer helpers used by the models."""

from kerasmer.layers.normalization import LocalResponseNormalization
from kerasmer.layers.precision import conv3d, needs_float32_conv3d

__all__ = ["LocalResponseNormalization", "conv3d", "needs_float32_conv3d"]
