"""kerasllm models: Transformer backbones, and the seq2seq Transformer and LSTM baseline, which share one
incremental-decoding interface."""

from kerasllm.models.backbones import TransformerDecoder, TransformerEncoder
from kerasllm.models.lstm_seq2seq import LSTMSeq2Seq
from kerasllm.models.transformer import Transformer

__all__ = ["LSTMSeq2Seq", "Transformer", "TransformerDecoder", "TransformerEncoder"]
