"""Language-model run configuration: a JSON file of plain values, fully checked on load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerasllm.runner import RunConfig
from kerasllm.tasks import RNNLM, CausalLM

CONFIG_DIR = Path(__file__).with_name("configs")
TOKENIZERS = ("characters", "wordpiece")


@dataclasses.dataclass
class GenerateConfig(RunConfig):
    """Everything a language-model run needs besides the data; see configs/*.json for the presets.

    Args (besides `RunConfig`'s):
        model: "gpt" (`CausalLM`) or "rnn" (`RNNLM`, LSTM or GRU by `model_args.cell`).
        tokenizer: "characters" (one id per character; `vocabulary_size` caps how many are kept) or "wordpiece".
        max_tokens: the block size: tokens per training example, the model's context, and the longest prompt +
            continuation it serves.
        batch_size: blocks per batch.
        steps_per_epoch: batches between validations (the training blocks repeat, with new offsets each pass).
        learning_rate: AdamW's peak rate; warmup_steps of linear warmup, then cosine decay to
            min_learning_rate at decay_steps (default: epochs × steps_per_epoch, the whole run).
        weight_decay: decoupled weight decay, not applied to norms, biases and embeddings.
        beta_2: AdamW's second-moment decay (0.99 in nanoGPT for small batches).
        clipnorm: global gradient-norm clip, or None.
    """

    model: str = "gpt"
    tokenizer: str = "characters"
    vocabulary_size: int = 256
    max_tokens: int = 128
    batch_size: int = 32
    epochs: int = 20
    steps_per_epoch: int | None = 250
    learning_rate: float | None = 1e-3
    min_learning_rate: float = 1e-4
    warmup_steps: int = 100
    decay_steps: int | None = None
    weight_decay: float = 0.1
    beta_2: float = 0.99
    clipnorm: float | None = 1.0
    early_stopping_patience: int | None = None
    jit_compile: bool = True

    PRESETS = CONFIG_DIR
    MODELS = {"gpt": CausalLM, "rnn": RNNLM}

    def filled_in_model_args(self) -> tuple[str, ...]:
        return super().filled_in_model_args() + ("vocabulary_size", "max_length")

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"{where}: tokenizer must be one of {list(TOKENIZERS)}, got {self.tokenizer!r}")
        if self.steps_per_epoch is None:
            raise ValueError(f"{where}: steps_per_epoch must be set (the training blocks repeat without end)")
        if self.learning_rate is None or self.learning_rate <= 0:
            raise ValueError(f"{where}: learning_rate must be a positive number, got {self.learning_rate}")
        if not 0 <= self.min_learning_rate <= self.learning_rate:
            raise ValueError(f"{where}: min_learning_rate must be between 0 and learning_rate")
        if self.max_tokens < 2:
            raise ValueError(f"{where}: max_tokens (the block size) must be at least 2, got {self.max_tokens}")
        for key in ("batch_size", "warmup_steps"):
            if getattr(self, key) < (1 if key == "batch_size" else 0):
                raise ValueError(f"{where}: {key} must be positive, got {getattr(self, key)}")
        if not 0 < self.beta_2 < 1:
            raise ValueError(f"{where}: beta_2 must be in (0, 1), got {self.beta_2}")
