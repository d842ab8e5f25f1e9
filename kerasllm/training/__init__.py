"""Training helpers for `model.fit`: the paper's recipe (loss, schedule, optimizer) and callbacks."""

from kerasllm.training.callbacks import ResumableEarlyStopping, TrainingClock, previous_best, training_callbacks
from kerasllm.training.losses import MaskedSparseCrossEntropy
from kerasllm.training.metrics import MaskedTokenAccuracy
from kerasllm.training.recipe import compile_for_training
from kerasllm.training.schedules import TransformerSchedule

__all__ = [
    "MaskedSparseCrossEntropy",
    "MaskedTokenAccuracy",
    "ResumableEarlyStopping",
    "TrainingClock",
    "TransformerSchedule",
    "compile_for_training",
    "previous_best",
    "training_callbacks",
]
