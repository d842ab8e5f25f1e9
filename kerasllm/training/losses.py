"""Token-level loss for sequence models: padding masked out, optional label smoothing, float32 maths."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasllm")
class MaskedSparseCrossEntropy(keras.losses.Loss):
    """Cross-entropy over token ids that ignores padding, with label smoothing.

    Keras' `SparseCategoricalCrossentropy` can ignore a class but has no label smoothing, and
    `CategoricalCrossentropy` smooths but needs one-hot targets of vocabulary width; this loss does
    both on integer targets. Smoothing spreads `label_smoothing` uniformly over the whole vocabulary
    (Szegedy et al. 2016, as used by Vaswani et al. 2017 with 0.1). The loss is the mean over
    non-padding tokens, computed in float32 so mixed precision cannot overflow it.

    Args:
        label_smoothing: probability mass moved from the target to the uniform distribution.
        pad_id: target id that contributes nothing to the loss.
        from_logits: whether `y_pred` are logits (True) or probabilities.

    Example:
    >>> loss = MaskedSparseCrossEntropy(label_smoothing=0.1)
    >>> value = loss(keras.ops.convert_to_tensor([[5, 2, 0]]), keras.random.normal((1, 3, 8)))
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        pad_id: int = 0,
        from_logits: bool = True,
        name: str = "masked_sparse_cross_entropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing
        self.pad_id = pad_id
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        y_pred = ops.cast(y_pred, "float32")
        log_probs = ops.log_softmax(y_pred, axis=-1) if self.from_logits else ops.log(ops.maximum(y_pred, 1e-9))
        nll = -ops.squeeze(ops.take_along_axis(log_probs, y_true[..., None], axis=-1), axis=-1)
        if self.label_smoothing:
            uniform = -ops.mean(log_probs, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        # A scalar already averaged over real tokens: Keras' default reduction would also count pads.
        return ops.sum(nll * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing, pad_id=self.pad_id, from_logits=self.from_logits)
        return config
