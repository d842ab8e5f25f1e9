"""SavedModel export for TF Serving, and verification as the model server would load it."""

from kerasllm.export.saved_model import (TranslatorModule, export_translator, layer_dtype_policies, next_version,
                                         with_dtype_policy)
from kerasllm.export.verify import format_report, verify_export

__all__ = ["TranslatorModule", "export_translator", "format_report", "layer_dtype_policies", "next_version",
           "verify_export", "with_dtype_policy"]
