"""Export trained models for serving."""

from kerasmer.export.saved_model import export_saved_model, load_class_names, next_version
from kerasmer.export.loading import ExportError, Exported, load_exported
from kerasmer.export.packing import unpack_weights

__all__ = ["ExportError", "Exported", "export_saved_model", "load_class_names", "load_exported", "next_version",
           "unpack_weights"]
