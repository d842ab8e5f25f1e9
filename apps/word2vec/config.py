"""word2vec run configuration: a JSON file of plain values, fully checked on load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerasllm.data.skipgrams import ARCHITECTURES
from kerasllm.runner import RunConfig
from kerasllm.tasks import Word2Vec

CONFIG_DIR = Path(__file__).with_name("configs")


@dataclasses.dataclass
class Word2VecConfig(RunConfig):
    """Everything a word2vec run needs besides the corpus; the names follow word2vec.c / gensim where they exist.

    Args (besides `RunConfig`'s):
        model_args: `{"dim": width of the vectors}`.
        architecture: "skipgram" (a word predicts each word of its window) or "cbow" (the window predicts it).
        vocabulary_size: the most words kept (the most frequent of those seen min_count times).
        min_count: words seen fewer times are dropped from the vocabulary and the sentences.
        window: the largest window; every position draws its own from 1..window.
        negatives: noise words per example.
        subsample: the frequent-word subsampling threshold t (gensim's `sample`); 0 keeps every word.
        ns_exponent: the power of the counts in the noise distribution.
        alpha, min_alpha: the per-example SGD rate at the start and at the end of the run (linear decay).
        batch_size: examples per batch.
        steps_per_execution: train steps per compiled call: a step is a few milliseconds of gathers and
            scatter-adds, so Keras's per-call overhead (callbacks, the progress bar, the host round trip) would
            otherwise cost as much as the step.
        epochs: passes over the corpus.
    """

    model: str = "word2vec"
    model_args: dict = dataclasses.field(default_factory=lambda: {"dim": 100})
    architecture: str = "skipgram"
    vocabulary_size: int = 100_000
    min_count: int = 5
    window: int = 5
    negatives: int = 5
    subsample: float = 1e-3
    ns_exponent: float = 0.75
    alpha: float = 0.025
    min_alpha: float = 1e-4
    batch_size: int = 4096
    steps_per_execution: int = 32
    epochs: int = 5
    early_stopping_patience: int | None = None
    jit_compile: bool = True

    PRESETS = CONFIG_DIR
    MODELS = {"word2vec": Word2Vec}

    def filled_in_model_args(self) -> tuple[str, ...]:
        return super().filled_in_model_args() + ("vocabulary_size",)

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"{where}: architecture must be one of {list(ARCHITECTURES)}, got {self.architecture!r}")
        for key in ("min_count", "window", "negatives", "batch_size", "steps_per_execution"):
            if getattr(self, key) < 1:
                raise ValueError(f"{where}: {key} must be at least 1, got {getattr(self, key)}")
        if not 0 <= self.subsample < 1:
            raise ValueError(f"{where}: subsample must be in [0, 1), got {self.subsample}")
        if not 0 <= self.min_alpha <= self.alpha or self.alpha <= 0:
            raise ValueError(
                f"{where}: need 0 <= min_alpha <= alpha and alpha > 0, got {self.min_alpha} and {self.alpha}"
            )
        if self.steps_per_epoch is not None:
            raise ValueError(f"{where}: steps_per_epoch is set by the corpus (one pass per epoch); leave it out")
