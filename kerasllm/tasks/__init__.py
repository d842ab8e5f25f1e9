"""kerasllm tasks: complete models for one job each, built from the layers and backbones."""

from kerasllm.tasks.causal_lm import CausalLM
from kerasllm.tasks.rnn_lm import RNNLM
from kerasllm.tasks.text_classifier import RNNClassifier, TransformerClassifier

__all__ = ["CausalLM", "RNNClassifier", "RNNLM", "TransformerClassifier"]
