"""Token metrics that ignore padding: accuracy (Keras' accuracy metrics count padded positions as hits) and perplexity."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasllm")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Share of non-padding target tokens whose argmax prediction is right.

    Args:
        pad_id: target id that is not counted.
        name: metric name shown in progress bars and history.

    Example:
    >>> metric = MaskedTokenAccuracy()
    >>> metric.update_state(keras.ops.convert_to_tensor([[4, 0]]), keras.ops.one_hot([[4, 1]], 5))
    >>> float(metric.result())
    1.0
    """

    def __init__(self, pad_id: int = 0, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct", dtype="float32")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
        self.correct.assign_add(ops.sum(hits * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "pad_id": self.pad_id}


@keras.saving.register_keras_serializable(package="kerasllm")
class Perplexity(keras.metrics.Metric):
    """exp(mean negative log-likelihood per non-padding target token), from logits, in float32.

    Args:
        pad_id: target id that is not counted.
        name: metric name shown in progress bars and history.

    Example:
    >>> metric = Perplexity()
    >>> metric.update_state(keras.ops.convert_to_tensor([[1, 0]]), keras.ops.zeros((1, 2, 4)))
    >>> round(float(metric.result()), 4)  # a uniform guess over 4 tokens
    4.0
    """

    def __init__(self, pad_id: int = 0, name: str = "perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id
        self.nll = self.add_variable(shape=(), initializer="zeros", name="nll", dtype="float32")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.squeeze(ops.take_along_axis(log_probs, y_true[..., None], axis=-1), axis=-1)
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        self.nll.assign_add(ops.sum(nll * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self):
        return ops.exp(self.nll / ops.maximum(self.total, 1.0))

    def reset_state(self):
        self.nll.assign(0.0)
        self.total.assign(0.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "pad_id": self.pad_id}
