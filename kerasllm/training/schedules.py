"""The learning-rate schedule of Vaswani et al. (2017), eq. 3."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasllm")
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lrate = scale · hidden_dim^-0.5 · min(step^-0.5, step · warmup_steps^-1.5).

    Linear warmup for `warmup_steps`, then inverse-square-root decay. `scale` (1.0 in the paper)
    lets small models and small batches use a larger peak without changing the shape.

    Args:
        hidden_dim: the model width (the paper's d_model).
        warmup_steps: steps of linear warmup (4000 in the paper).
        scale: multiplier on the whole curve.

    Example:
    >>> optimizer = keras.optimizers.Adam(TransformerSchedule(512), beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    """

    def __init__(self, hidden_dim: int, warmup_steps: int = 4000, scale: float = 1.0):
        self.hidden_dim = hidden_dim
        self.warmup_steps = warmup_steps
        self.scale = scale

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0  # Keras counts from 0; the formula from 1.
        decay = ops.minimum(ops.rsqrt(step), step * self.warmup_steps**-1.5)
        return self.scale * self.hidden_dim**-0.5 * decay

    def get_config(self) -> dict:
        return {"hidden_dim": self.hidden_dim, "warmup_steps": self.warmup_steps, "scale": self.scale}
