"""Keras layers of kerasllm: attention, positions, Transformer and recurrent building blocks."""

from kerasllm.layers.attention import MultiHeadAttention, causal_mask
from kerasllm.layers.dense import Dense
from kerasllm.layers.embeddings import TokenAndPositionEmbedding, tied_logits
from kerasllm.layers.feed_forward import FeedForward
from kerasllm.layers.lstm_decoder import LSTMDecoder, LSTMDecoderCell
from kerasllm.layers.pooling import POOLING_MODES, SequencePooling
from kerasllm.layers.positions import LearnedPositionEmbedding, SinusoidalPositionEncoding
from kerasllm.layers.recurrent import RNNEncoder
from kerasllm.layers.recurrent_attention import BahdanauAttention, LuongAttention
from kerasllm.layers.transformer import TransformerDecoderLayer, TransformerEncoderLayer

__all__ = [
    "BahdanauAttention",
    "Dense",
    "FeedForward",
    "LSTMDecoder",
    "LSTMDecoderCell",
    "LearnedPositionEmbedding",
    "LuongAttention",
    "MultiHeadAttention",
    "POOLING_MODES",
    "RNNEncoder",
    "SequencePooling",
    "SinusoidalPositionEncoding",
    "TokenAndPositionEmbedding",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "causal_mask",
    "tied_logits",
]
