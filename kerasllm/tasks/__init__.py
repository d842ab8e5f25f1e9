"""kerasllm tasks: complete models for one job each, built from the layers and backbones."""

from kerasllm.tasks.causal_lm import CausalLM
from kerasllm.tasks.rnn_lm import RNNLM
from kerasllm.tasks.text_classifier import RNNClassifier, TransformerClassifier
from kerasllm.tasks.word2vec import NegativeSamplingLoss, Word2Vec, word2vec_learning_rate

__all__ = [
    "CausalLM",
    "NegativeSamplingLoss",
    "RNNClassifier",
    "RNNLM",
    "TransformerClassifier",
    "Word2Vec",
    "word2vec_learning_rate",
]
