"""kerasllm models: the Transformer and the LSTM baseline, both with the same incremental-decoding interface."""

from kerasllm.models.lstm_seq2seq import LSTMSeq2Seq
from kerasllm.models.transformer import Transformer

__all__ = ["LSTMSeq2Seq", "Transformer"]
