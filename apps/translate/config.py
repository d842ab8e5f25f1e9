"""Translation run configuration: a JSON file of plain values, checked on load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).with_name("configs")


@dataclasses.dataclass
class TranslateConfig:
    """Everything a translation run needs besides the data; see configs/*.json for the presets.

    Args:
        model: "transformer" or "lstm".
        model_args: constructor arguments of `Transformer` / `LSTMSeq2Seq` (vocabulary sizes are filled in).
        vocabulary_size: WordPiece vocabulary size of each side.
        max_tokens: training examples are truncated to this many tokens per side.
        tokens_per_batch: token budget of one training batch.
        epochs: upper bound on epochs; `time_budget_minutes` may stop earlier.
        time_budget_minutes: wall-clock training budget, or None.
        warmup_steps, lr_scale: Transformer schedule (`d_model` taken from model_args); ignored when
            `learning_rate` is set.
        learning_rate: constant Adam rate (LSTM).
        lr_decay_patience, lr_decay_factor: with `learning_rate`, multiply the rate by the factor after this
            many epochs without val_loss improvement; None (default) keeps it constant.
        label_smoothing: 0.1 in the paper.
        clipnorm: gradient-norm clip, or None.
        early_stopping_patience: epochs without val_loss improvement before stopping.
        mixed_precision: None, "mixed_bfloat16" or "mixed_float16".
        jit_compile: XLA-compile the train step.
        decoding: search options for evaluation and export (`search`, `beam_size`, `alpha`, `max_length`, ...).
        seed: shuffling and initialisation seed.
    """

    model: str = "transformer"
    model_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    vocabulary_size: int = 8000
    max_tokens: int = 64
    tokens_per_batch: int = 4096
    epochs: int = 30
    time_budget_minutes: float | None = None
    warmup_steps: int = 4000
    lr_scale: float = 1.0
    learning_rate: float | None = None
    lr_decay_patience: int | None = None
    lr_decay_factor: float = 0.5
    label_smoothing: float = 0.1
    clipnorm: float | None = None
    early_stopping_patience: int | None = 5
    mixed_precision: str | None = None
    jit_compile: bool = True
    decoding: dict[str, Any] = dataclasses.field(default_factory=lambda: {"search": "beam", "beam_size": 4, "alpha": 0.6})
    seed: int = 0

    @classmethod
    def load(cls, name_or_path: str | Path) -> "TranslateConfig":
        """A preset name (`transformer`, `lstm_attention`, `tiny`, ...) or a path to a JSON file."""
        path = Path(name_or_path)
        if not path.suffix:
            path = CONFIG_DIR / f"{name_or_path}.json"
        if not path.exists():
            presets = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
            raise FileNotFoundError(f"no config {name_or_path!r}: give a JSON file or one of the presets: {presets}")
        values = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {unknown}; known keys: {sorted(known)}")
        config = cls(**values)
        if config.model not in ("transformer", "lstm"):
            raise ValueError(f"{path}: model must be 'transformer' or 'lstm', got {config.model!r}")
        if config.lr_decay_patience is not None and config.learning_rate is None:
            raise ValueError(f"{path}: lr_decay_patience needs a constant learning_rate (the Transformer "
                             "schedule sets the rate itself)")
        return config

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
