"""Translation run configuration: a JSON file of plain values, fully checked on load."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kerasllm.decoding import SEARCHES
from kerasllm.models import LSTMSeq2Seq, Transformer
from kerasllm.runner import RunConfig, check_arguments

CONFIG_DIR = Path(__file__).with_name("configs")
# Search arguments the serving graph and the translator fill in themselves.
DECODING_FILLED_IN = ("model", "encoder_tokens", "start_id", "end_id", "pad_id", "static_shapes")


@dataclasses.dataclass
class TranslateConfig(RunConfig):
    """Everything a translation run needs besides the data; see configs/*.json for the presets.

    Args (besides `RunConfig`'s):
        model: "transformer" or "lstm".
        tokens_per_batch: token budget of one training batch.
        warmup_steps, lr_scale: the Transformer schedule (its `hidden_dim` taken from model_args); ignored when
            `learning_rate` is set.
        label_smoothing: 0.1 in the paper.
        clipnorm: gradient-norm clip, or None.
        decoding: search options for evaluation and export (`search`, `beam_size`, `alpha`, `max_length`, ...).
    """

    model: str = "transformer"
    vocabulary_size: int = 8000
    tokens_per_batch: int = 4096
    warmup_steps: int = 4000
    lr_scale: float = 1.0
    label_smoothing: float = 0.1
    clipnorm: float | None = None
    decoding: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"search": "beam", "beam_size": 4, "alpha": 0.6}
    )

    PRESETS = CONFIG_DIR
    MODELS = {"transformer": Transformer, "lstm": LSTMSeq2Seq}

    def filled_in_model_args(self) -> tuple[str, ...]:
        return super().filled_in_model_args() + ("source_vocabulary_size", "target_vocabulary_size")

    def validate(self, where: str) -> None:
        super().validate(where)
        check_decoding(self.decoding, f"{where}: decoding")
        if self.learning_rate is None and "hidden_dim" not in self.model_args:
            raise ValueError(f"{where}: the Transformer schedule needs model_args.hidden_dim (or set learning_rate)")


def check_decoding(decoding: Any, where: str) -> None:
    """A decoding dict names a search in `SEARCHES` and only that search's arguments, each of the right type."""
    if not isinstance(decoding, dict):
        raise ValueError(f'{where} must be a JSON object such as {{"search": "beam", "beam_size": 4}}')
    search = decoding.get("search", "beam")
    if search not in SEARCHES:
        raise ValueError(f"{where}: search must be one of {sorted(SEARCHES)}, got {search!r}")
    options = {key: value for key, value in decoding.items() if key != "search"}
    check_arguments(SEARCHES[search], options, where, exclude=DECODING_FILLED_IN)
