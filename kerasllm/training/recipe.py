"""One call that compiles a seq2seq model with the paper's recipe (or the LSTM's)."""

from __future__ import annotations

import keras

from kerasllm.training.losses import MaskedSparseCrossEntropy
from kerasllm.training.metrics import MaskedTokenAccuracy
from kerasllm.training.schedules import TransformerSchedule


def compile_for_training(
    model: keras.Model,
    *,
    hidden_dim: int | None = None,
    warmup_steps: int = 4000,
    learning_rate: float | None = None,
    lr_scale: float = 1.0,
    label_smoothing: float = 0.1,
    clipnorm: float | None = None,
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Compile `model` for next-token training.

    With `hidden_dim`, the optimizer is Vaswani et al.'s: Adam(β1 0.9, β2 0.98, ε 1e-9) on
    `TransformerSchedule(hidden_dim, warmup_steps, lr_scale)`; with `learning_rate`, plain Adam at that
    rate (the LSTM baselines). `clipnorm` clips gradients (LSTMs need it). Loss and accuracy ignore
    padding; under a `mixed_float16` policy Keras wraps the optimizer in loss scaling itself.

    Args:
        model: a model mapping `(encoder_tokens, decoder_inputs)` to logits.
        hidden_dim: the model width, selects the warmup/inverse-square-root schedule.
        warmup_steps: warmup of that schedule.
        learning_rate: constant Adam learning rate, used when `hidden_dim` is None.
        lr_scale: multiplier on the schedule.
        label_smoothing: 0.1 in the paper.
        clipnorm: global gradient-norm clip, or None.
        jit_compile: passed to `model.compile` (XLA for the train step).

    Example:
    >>> # compile_for_training(transformer, hidden_dim=256, warmup_steps=4000)
    """
    if hidden_dim is not None:
        rate = TransformerSchedule(hidden_dim, warmup_steps, lr_scale)
        optimizer = keras.optimizers.Adam(rate, beta_1=0.9, beta_2=0.98, epsilon=1e-9, clipnorm=clipnorm)
    elif learning_rate is not None:
        optimizer = keras.optimizers.Adam(learning_rate, clipnorm=clipnorm)
    else:
        raise ValueError(
            "compile_for_training needs hidden_dim (Transformer schedule) or learning_rate (constant Adam)"
        )
    model.compile(
        optimizer=optimizer,
        loss=MaskedSparseCrossEntropy(label_smoothing=label_smoothing),
        metrics=[MaskedTokenAccuracy()],
        jit_compile=jit_compile,
    )
    return model
