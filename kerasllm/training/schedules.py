"""Learning-rate schedules: Vaswani et al. (2017), eq. 3, and warmup + cosine decay (GPT-2, nanoGPT)."""

from __future__ import annotations

import keras
import numpy as np
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


@keras.saving.register_keras_serializable(package="kerasllm")
class WarmupCosineSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `learning_rate`, then cosine decay to `min_learning_rate` at `decay_steps`, then constant.

    GPT-2 / nanoGPT's schedule: lr(s) = peak · (s + 1) / (warmup + 1) while s < warmup, then
    min + ½ (peak − min) (1 + cos(π (s − warmup) / (decay_steps − warmup))).

    Args:
        learning_rate: the peak rate.
        warmup_steps: steps of linear warmup.
        decay_steps: the step where the decay reaches `min_learning_rate` (the run's length).
        min_learning_rate: the floor.

    Example:
    >>> optimizer = keras.optimizers.AdamW(WarmupCosineSchedule(1e-3, 100, 2000, 1e-4), weight_decay=0.1)
    """

    def __init__(self, learning_rate: float, warmup_steps: int, decay_steps: int, min_learning_rate: float = 0.0):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps
        self.decay_steps = max(decay_steps, warmup_steps + 1)
        self.min_learning_rate = min_learning_rate

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = self.learning_rate * (step + 1.0) / (self.warmup_steps + 1.0)
        progress = ops.clip((step - self.warmup_steps) / (self.decay_steps - self.warmup_steps), 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(np.pi * progress))
        decayed = self.min_learning_rate + (self.learning_rate - self.min_learning_rate) * cosine
        return ops.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "min_learning_rate": self.min_learning_rate,
        }
