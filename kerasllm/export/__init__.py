"""SavedModel export for TF Serving, and verification as the model server would load it."""

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
    "ServingModule",
    "export_saved_model",
    "format_report",
    "layer_dtype_policies",
    "next_version",
    "remove_stale_staging",
    "serving_copy",
    "verify_export",
    "with_dtype_policy",
]
