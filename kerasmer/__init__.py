"""kerasmer: Keras 3 / TensorFlow facial micro-expression recognition.

Example:
    >>> import kerasmer
    >>> kerasmer.list_models()          # doctest: +SKIP
    >>> model = kerasmer.build_model("learnet", num_classes=3)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from kerasmer.models import build_model, list_models, model_info, register_model  # noqa: E402

__all__ = ["build_model", "list_models", "model_info", "register_model", "__version__"]
