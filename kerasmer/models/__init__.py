"""Model registry and every registered architecture family.

Importing this package registers all models: every module in this folder other
than the registry's own helpers is imported, so adding a model family means
writing one file that uses ``@register_model``.
"""

import importlib
import pkgutil

from kerasmer.models.registry import ModelInfo, build_model, cam_layer, list_models, model_info, register_model

_NOT_FAMILIES = {"registry", "common", "folding"}

for _mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _mod.name not in _NOT_FAMILIES and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

from kerasmer.models.residual_attention import attention_outputs  # noqa: E402  (soft masks per stage)
from kerasmer.models.folding import fold_batch_norms  # noqa: E402  (the inference graph)
from kerasmer.models.transfer import freeze_layers, load_weights_by_name  # noqa: E402

__all__ = ["ModelInfo", "attention_outputs", "build_model", "cam_layer", "fold_batch_norms", "freeze_layers", "list_models",
           "load_weights_by_name", "model_info", "register_model"]
