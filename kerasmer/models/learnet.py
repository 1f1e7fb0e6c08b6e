"""LEARNet: Lateral Accretive Hybrid Network on dynamic images.

Reference: M. Verma, S. K. Vipparthi, G. Singh, S. Murala, "LEARNet: Dynamic
Imaging Network for Micro Expression Recognition", IEEE Trans. Image Processing
29, 2020.  §III-B, Fig. 2 and Table I.  Readings chosen where the paper is
ambiguous are in ``docs/architectures.md``.
"""

from __future__ import annotations

import keras

from kerasmer.core.precision import current_policy
from kerasmer.layers.biased import Conv2D, Dense
from kerasmer.layers import BatchNormalization, LocalResponseNormalization
from kerasmer.models.common import classifier
from kerasmer.models.registry import register_model

# (kernel, filters) of the three convs along each of the four lateral paths (Table I).
LEARNET_PATH_SPEC = ((1, 16), (3, 32), (5, 64))
# After stage i (0-based) the hybrid paths 3 and 4 receive the accretion (add)
# of their own map and that of sequential path 1 and 2 respectively (Fig. 2:
# Add-1.{1,2} after Conv-2, Add-2.{1,2} after Conv-3).
LEARNET_ACCRETION_STAGES = (0, 1)
# Normalisation after the concat ("LRN" in Table I): "batch" is eqs. (9)-(12),
# a batch normalisation with learnable mu, nu; "lrn" is AlexNet's cross-channel
# LRN plus a per-channel affine (kerasmer's reading before issue 13).
LEARNET_NORMALIZATIONS = ("batch", "lrn")
# Eq. (10) leaves epsilon unset; MATLAB's batchNormalizationLayer (the authors'
# framework, §IV) defaults to 1e-5.
LEARNET_BN_EPSILON = 1e-5


def _conv(x, filters, kernel, name):
    return Conv2D(filters, kernel, strides=2, padding="same", activation="relu", name=name)(x)


def lateral_accretive_block(x, name="lateral"):
    """Four lateral paths of stride-2 convs with accretion layers, concatenated.

    Paths 1 and 2 are sequential; paths 3 and 4 are hybrid: before each of their
    next convs, their map is accreted (added) to that of path 1 or 2.

    Args:
        x: feature map (batch, H, W, C).
        name: prefix for the layer names.

    Returns:
        The concatenation of the four paths, (batch, H/8, W/8, 4·64).
    """
    paths = [x, x, x, x]
    for stage, (kernel, filters) in enumerate(LEARNET_PATH_SPEC):
        conv_id = stage + 2  # Table I numbers these Conv-2, Conv-3, Conv-4
        paths = [_conv(p, filters, kernel, f"{name}_conv{conv_id}_{i + 1}") for i, p in enumerate(paths)]
        if stage in LEARNET_ACCRETION_STAGES:
            add_id = LEARNET_ACCRETION_STAGES.index(stage) + 1
            paths[2] = keras.layers.Add(name=f"{name}_add{add_id}_1")([paths[0], paths[2]])
            paths[3] = keras.layers.Add(name=f"{name}_add{add_id}_2")([paths[1], paths[3]])
    return keras.layers.Concatenate(name=f"{name}_concat")(paths)


def learnet_normalization(kind: str, name: str = "lrn") -> keras.layers.Layer:
    """The layer of Table I's "LRN" row, per eqs. (9)-(12) or as cross-channel LRN.

    Eqs. (9)-(12) subtract the mini-batch mean m_B, divide by sqrt(d_B^2 + eps)
    and apply the learnable mu, nu per channel: batch normalisation, whose
    gamma/beta are Table I's 256 + 256 parameters.  Its moving mean and
    variance (for inference) are non-trainable and not in Table I.

    Args:
        kind: ``"batch"`` (eqs. 9-12, the default of :func:`learnet`) or
            ``"lrn"`` (AlexNet cross-channel LRN, alpha=1e-4, k=1, plus an affine).
        name: layer name (``"lrn"``, as the row of Table I).

    Returns:
        A Keras layer with 2·C trainable weights.

    Raises:
        ValueError: an unknown ``kind``.

    Example:
        >>> y = learnet_normalization("batch")(x)  # doctest: +SKIP

    Reference: Verma et al., IEEE TIP 2020, §III-B eqs. (9)-(12), Table I.
    """
    if kind == "batch":
        return BatchNormalization(epsilon=LEARNET_BN_EPSILON, name=name)
    if kind == "lrn":
        return LocalResponseNormalization(name=name)
    raise ValueError(f"learnet: normalization must be one of {LEARNET_NORMALIZATIONS}, got {kind!r}")


@register_model(
    "learnet",
    input_shape=(112, 112, 3),
    modality="dynamic_image",
    num_classes=8,
    paper="Verma et al., LEARNet: Dynamic Imaging Network for Micro Expression Recognition, IEEE TIP 2020",
    # Table I's rows sum to 1,866,632 with 8 classes once the FC row's misprint is
    # corrected (4x4x256 -> 256 is 1,048,832); the authors' released model has 1.87M.
    # Compared with the trainable count (the shared test): the "LRN" row's batch
    # norm also holds 512 non-trainable moving statistics that Table I leaves out.
    paper_params=1_866_632,
    paper_params_config={"num_classes": 8},
    params_rtol=0.0,
    test_input_shape=(32, 32, 3),
    description="Lateral accretive hybrid network on a dynamic image (1.87M params)",
    recipe="learnet",
)
def learnet(*, num_classes, input_shape, dropout=0.5, fc_units=256, normalization="batch"):
    """Build LEARNet.

    Args:
        num_classes: number of classes.
        input_shape: (H, W, C) of the dynamic image; Table I uses 112×112×3.
        dropout: dropout rate after the FC layer.
        fc_units: width of the fully connected layer (Table I: 256).
        normalization: the "LRN" row of Table I: ``"batch"`` (default; eqs.
            9-12, batch normalisation) or ``"lrn"`` (cross-channel LRN + affine).
            Both have Table I's 256 + 256 trainable parameters.

    Returns:
        A ``keras.Model`` named ``"learnet"``.

    Example:
        >>> model = kerasmer.build_model("learnet", num_classes=3)  # doctest: +SKIP
    """
    norm = learnet_normalization(normalization)  # validates before anything is built
    policy = current_policy()
    inputs = keras.Input(shape=input_shape, name="dynamic_image")
    x = _conv(inputs, 16, 3, "conv1")
    x = lateral_accretive_block(x, name="lateral")
    x = norm(x)
    x = _conv(x, 256, 3, "conv5")
    x = keras.layers.Flatten(name="flatten")(x)
    x = Dense(fc_units, activation="relu", name="fc")(x)
    outputs = classifier(x, num_classes, policy=policy, dropout=dropout)
    return keras.Model(inputs, outputs, name="learnet")
