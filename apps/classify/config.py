"""Classification run configuration: a JSON file of plain values, fully checked on load."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from kerasllm.data.windows import WINDOW_AGGREGATIONS
from kerasllm.data.word_vectors import OOV_MODES
from kerasllm.runner import RunConfig
from kerasllm.tasks import RNNClassifier, TransformerClassifier

CONFIG_DIR = Path(__file__).with_name("configs")


@dataclasses.dataclass
class ClassifyConfig(RunConfig):
    """Everything a classification run needs besides the data; see configs/*.json for the presets.

    Args (besides `RunConfig`'s):
        model: "transformer" (`TransformerClassifier`) or "rnn" (`RNNClassifier`: SimpleRNN, LSTM or GRU by
            `model_args.cell`).
        max_tokens: the model's window: training cuts texts there; evaluation and serving slide windows of this
            many tokens over longer texts and aggregate their logits.
        stride: tokens between window starts (default half the window).
        aggregate: "mean" or "max" of the window logits.
        tokens_per_batch: token budget of one training batch.
        learning_rate: Adam's rate (constant; `lr_decay_patience` halves it on a val_loss plateau).
        weight_decay: decoupled weight decay (AdamW), 0 for plain Adam.
        clipnorm: gradient-norm clip, or None.
        embeddings: a GloVe, word2vec text or word2vec binary file (plain or gzip, format detected) whose
            vectors a new run starts its token embedding from, row by vocabulary token (`aligned_matrix`: a
            whole word is looked up as is, then in lowercase; "##" pieces and special tokens are misses or
            zeros); None for a random start. The vectors' dim must be the model's `embedding_width`.
        embeddings_trainable: false freezes the token embedding at the vectors for the whole run.
        embeddings_oov: what a vocabulary token without a vector starts as: "zeros", "random" (normal with
            the vectors' standard deviation) or "mean" (the mean vector).
    """

    model: str = "rnn"
    vocabulary_size: int = 8000
    max_tokens: int = 64
    stride: int | None = None
    aggregate: str = "mean"
    tokens_per_batch: int = 2048
    learning_rate: float | None = 1e-3
    weight_decay: float = 0.0
    clipnorm: float | None = 1.0
    early_stopping_patience: int | None = 2
    jit_compile: bool = False
    embeddings: str | None = None
    embeddings_trainable: bool = True
    embeddings_oov: str = "zeros"

    PRESETS = CONFIG_DIR
    MODELS = {"transformer": TransformerClassifier, "rnn": RNNClassifier}
    # The model argument that sets each model's token-embedding width.
    EMBEDDING_WIDTH_ARGS = {"transformer": "hidden_dim", "rnn": "embedding_dim"}

    def filled_in_model_args(self) -> tuple[str, ...]:
        return super().filled_in_model_args() + ("vocabulary_size", "num_classes", "cls_id", "embedding_trainable")

    @property
    def window_stride(self) -> int:
        return self.stride or max(1, self.max_tokens // 2)

    @property
    def embedding_width(self) -> int:
        """The width of the model's token embedding: `model_args.embedding_dim` of an RNN, `hidden_dim` of a
        Transformer (the constructor's default when model_args leaves it out)."""
        name = self.EMBEDDING_WIDTH_ARGS[self.model]
        return self.model_args.get(name, inspect.signature(self.MODELS[self.model]).parameters[name].default)

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.learning_rate is None or self.learning_rate <= 0:
            raise ValueError(f"{where}: learning_rate must be a positive number, got {self.learning_rate}")
        if self.aggregate not in WINDOW_AGGREGATIONS:
            raise ValueError(f"{where}: aggregate must be one of {list(WINDOW_AGGREGATIONS)}, got {self.aggregate!r}")
        if self.stride is not None and not 1 <= self.stride <= self.max_tokens:
            raise ValueError(f"{where}: stride must be between 1 and max_tokens={self.max_tokens}, got {self.stride}")
        if self.tokens_per_batch < self.max_tokens:
            raise ValueError(f"{where}: tokens_per_batch ({self.tokens_per_batch}) must hold one window of max_tokens")
        cls_extra = 1 if self.model_args.get("pooling") == "cls" else 0
        if self.model == "transformer" and self.max_tokens + cls_extra > self.model_args.get("max_length", 256):
            raise ValueError(
                f"{where}: max_tokens ({self.max_tokens}{' + [CLS]' if cls_extra else ''}) exceeds "
                f"model_args.max_length ({self.model_args.get('max_length', 256)})"
            )
        if self.embeddings_oov not in OOV_MODES:
            raise ValueError(f"{where}: embeddings_oov must be one of {list(OOV_MODES)}, got {self.embeddings_oov!r}")
        if self.embeddings is not None and not self.embeddings.strip():
            raise ValueError(f"{where}: embeddings must be the path of a word-vector file, or null")
        if self.embeddings is None and (not self.embeddings_trainable or self.embeddings_oov != "zeros"):
            raise ValueError(
                f"{where}: embeddings_trainable and embeddings_oov apply to pretrained vectors: set embeddings "
                "(--embeddings PATH) too"
            )
