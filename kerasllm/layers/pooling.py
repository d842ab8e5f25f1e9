"""Pool a sequence of vectors into one vector per sequence, skipping padding: a classifier's reading of a text."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

POOLING_MODES = ("mean", "max", "first")


@keras.saving.register_keras_serializable(package="kerasllm")
class SequencePooling(keras.layers.Layer):
    """Hidden states [B, S, D] and their padding mask → one vector [B, D] per sequence.

    - `"mean"`: the average over real positions (keras-io's Transformer classifier, Kim-style bag of states);
    - `"max"`: the per-feature maximum over real positions (often the stronger reading of a BiLSTM);
    - `"first"`: position 0, where a classifier puts its [CLS] token (BERT).

    A sequence with no real position pools to zeros under every mode, so its answer depends on the weights alone,
    not on how much padding its batch had. Keras' `GlobalAveragePooling1D` would divide by zero there, and a
    masked `max` would return the most negative float.

    Args:
        mode: `"mean"`, `"max"` or `"first"`. Defaults to `"mean"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        hidden: [B, S, D] float.
        padding_mask: boolean [B, S], True for real positions; the Keras mask of `hidden` when not given, else
            every position counts.

    Example:

    ```python
    pooling = kerasllm.layers.SequencePooling("mean")
    hidden = np.array([[[1.0], [3.0], [9.0]]])
    pooling(hidden, padding_mask=np.array([[True, True, False]]))  # [[2.0]]
    ```
    """

    def __init__(self, mode: str = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"mode must be one of {list(POOLING_MODES)}, got {mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, hidden: Any, padding_mask: Any = None, mask: Any = None) -> Any:
        padding_mask = padding_mask if padding_mask is not None else mask
        if padding_mask is None:
            padding_mask = ops.ones(ops.shape(hidden)[:2], dtype="bool")
        real = ops.expand_dims(ops.cast(padding_mask, hidden.dtype), -1)  # [B, S, 1]
        if self.mode == "first":
            return hidden[:, 0] * real[:, 0]
        if self.mode == "mean":
            count = ops.sum(real, axis=1)
            return ops.sum(hidden * real, axis=1) / ops.maximum(count, ops.ones_like(count))
        lowest = ops.min(hidden) - 1.0  # below every real value: padded positions never win the max
        pooled = ops.max(ops.where(real > 0, hidden, lowest), axis=1)
        return ops.where(ops.sum(real, axis=1) > 0, pooled, ops.zeros_like(pooled))

    def compute_mask(self, hidden: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, hidden_shape: tuple) -> tuple:
        return (hidden_shape[0], hidden_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}
