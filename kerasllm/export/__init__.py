"""SavedModel export for TF Serving, verification as the model server would load it, and CTranslate2 export."""

from kerasllm.export.ctranslate2 import QUANTIZATIONS, export_ctranslate2
from kerasllm.export.saved_model import (
    ServingModule,
    export_saved_model,
    layer_dtype_policies,
    next_version,
    remove_stale_staging,
    serving_copy,
    with_dtype_policy,
)
from kerasllm.export.verify import format_report, verify_export

__all__ = [
    "QUANTIZATIONS",
    "ServingModule",
    "export_ctranslate2",
    "export_saved_model",
    "format_report",
    "layer_dtype_policies",
    "next_version",
    "remove_stale_staging",
    "serving_copy",
    "verify_export",
    "with_dtype_policy",
]
