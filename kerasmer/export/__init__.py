"""Export trained models for serving."""

from kerasmer.export.saved_model import export_saved_model, load_class_names, next_version

__all__ = ["export_saved_model", "load_class_names", "next_version"]
