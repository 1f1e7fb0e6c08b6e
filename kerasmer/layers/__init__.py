"""Custom, serializable Keras layers and layer helpers used by the models."""

from kerasmer.layers.normalization import (BatchNormalization, ChannelAffine, FoldedBatchNorm,
                                            LocalResponseNormalization)
from kerasmer.layers.attention import AttentionActivation, BilinearResize
from kerasmer.layers.biased import Conv2D, Conv3D, Dense, add_bias, inference_graph
from kerasmer.layers.attention3d import ChannelPool, ReduceSum, channel_attention_3d, spatiotemporal_attention_3d
from kerasmer.core.precision import needs_conv3d_guard
from kerasmer.layers.conv import GuardedConv3D, conv3d
from kerasmer.layers.micro_attention import ChannelMean, MicroAttentionGate
from kerasmer.layers.padding import UnfusedZeroPadding3D
from kerasmer.layers.tokens import (BlocksToTokens, GridSplit, MultiHeadSelfAttention, PositionalEmbedding,
                                    TokenSelect)

__all__ = ["BatchNormalization", "ChannelAffine", "FoldedBatchNorm", "LocalResponseNormalization", "GuardedConv3D",
           "conv3d", "needs_conv3d_guard"]
__all__ += ["ChannelPool", "ReduceSum", "channel_attention_3d", "spatiotemporal_attention_3d"]
__all__ += ["ChannelMean", "MicroAttentionGate", "BlocksToTokens", "GridSplit", "MultiHeadSelfAttention",
            "PositionalEmbedding", "TokenSelect"]
__all__ += ["AttentionActivation", "BilinearResize"]
__all__ += ["UnfusedZeroPadding3D", "Conv2D", "Conv3D", "Dense", "add_bias", "inference_graph"]
