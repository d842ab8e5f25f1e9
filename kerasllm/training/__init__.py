"""Training helpers for `model.fit`: the paper's recipe (loss, schedule, optimizer) and callbacks."""

from kerasllm.training.callbacks import ResumableEarlyStopping, TrainingClock, previous_best, training_callbacks
from kerasllm.training.losses import MaskedSparseCrossEntropy
from kerasllm.training.metrics import MaskedTokenAccuracy, Perplexity
from kerasllm.training.recipe import compile_for_training
from kerasllm.training.schedules import TransformerSchedule, WarmupCosineSchedule

__all__ = [
    "MaskedSparseCrossEntropy",
    "MaskedTokenAccuracy",
    "Perplexity",
    "ResumableEarlyStopping",
    "TrainingClock",
    "TransformerSchedule",
    "WarmupCosineSchedule",
    "compile_for_training",
    "previous_best",
    "training_callbacks",
]
