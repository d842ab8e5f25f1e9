"""A stacked, optionally bidirectional recurrent encoder over token ids (LSTM, GRU or simple RNN).

It reads token ids rather than embeddings so that every user passes the same thing, its padding included: the
LSTM seq2seq baseline's encoder and an RNN text classifier alike. The embedding is the encoder's own, built from
`vocabulary_size` and `embedding_dim`, or one given to it (e.g. pretrained, or frozen).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

RNN_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}


@keras.saving.register_keras_serializable(package="kerasllm")
class RNNEncoder(keras.layers.Layer):
    """Token ids [B, S] → every position's outputs and each sequence's final states, padding skipped.

    Token id 0 is padding. The recurrence is masked, so a padded step carries the state over unchanged: the final
    states are those of each sequence's last real token (for a backward direction, of its first), as if the
    sequence had not been padded. With `bidirectional`, each layer reads both ways and its outputs and final
    states are the forward and backward ones concatenated. Dropout is applied to the input of every recurrent
    layer (the embedding, then each layer's outputs), not inside the recurrence.

    Args:
        units: int, the state size of every layer (of each direction when bidirectional).
        vocabulary_size: int, the number of token ids, for an embedding of the encoder's own; or `None` with
            `embedding`.
        embedding_dim: int, the width of that embedding. Defaults to `None` (needed with `vocabulary_size`).
        embedding: a layer mapping token ids [B, S] to [B, S, E], used instead of an embedding of the encoder's
            own (`vocabulary_size` and `embedding_dim` are then `None`). Defaults to `None`.
        cell: `"lstm"`, `"gru"` or `"simple_rnn"`. Defaults to `"lstm"`.
        num_layers: int, stacked recurrent layers. Defaults to `1`.
        bidirectional: bool. Defaults to `False`.
        dropout: float. Defaults to `0.0`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        token_ids: [B, S] int token ids, 0-padded.
        padding_mask: boolean [B, S], True for real tokens; `token_ids != 0` when not given.
        training: bool, whether dropout is active.

    Returns:
        `(outputs, states)`: `outputs` [B, S, width], the top layer's output at every position (padded positions
        included, masked by the Keras mask it carries), and `states`, a list with the final hidden state, then
        for an LSTM the final cell state, each [B, num_layers, width] (layer i at index i). width is `units`, or
        `2 * units` when bidirectional.

    Example:

    ```python
    encoder = kerasllm.layers.RNNEncoder(units=16, vocabulary_size=100, embedding_dim=8, bidirectional=True)
    outputs, (hidden, cell) = encoder(np.array([[5, 6, 7, 0]], dtype="int32"))  # [1, 4, 32], [1, 1, 32] each
    gru = kerasllm.layers.RNNEncoder(units=16, embedding=keras.layers.Embedding(100, 8), cell="gru")
    outputs, (hidden,) = gru(np.array([[5, 6, 7, 0]], dtype="int32"))  # a classifier reads hidden[:, -1]
    ```
    """

    def __init__(
        self,
        units: int,
        vocabulary_size: int | None = None,
        embedding_dim: int | None = None,
        embedding: keras.layers.Layer | None = None,
        cell: str = "lstm",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if cell not in RNN_CELLS:
            raise ValueError(f"cell must be one of {sorted(RNN_CELLS)}, got {cell!r}.")
        own_embedding = (vocabulary_size, embedding_dim) != (None, None)
        if own_embedding == (embedding is not None) or (own_embedding and None in (vocabulary_size, embedding_dim)):
            raise ValueError("RNNEncoder takes vocabulary_size and embedding_dim, or an embedding layer.")
        self.units = units
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.shares_embedding = embedding is not None
        self.supports_masking = True  # the outputs keep the padding mask
        if embedding is None:
            embedding = keras.layers.Embedding(
                vocabulary_size, embedding_dim, mask_zero=True, dtype=self.dtype_policy, name="token_embedding"
            )
        self.embedding = embedding
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        self.rnn_layers = []
        for index in range(num_layers):
            rnn = RNN_CELLS[cell](
                units, return_sequences=True, return_state=True, dtype=self.dtype_policy, name=f"{cell}_{index}"
            )
            if bidirectional:
                rnn = keras.layers.Bidirectional(rnn, dtype=self.dtype_policy, name=f"bidirectional_{index}")
            self.rnn_layers.append(rnn)

    def build(self, token_ids_shape: tuple) -> None:
        self.embedding.build(token_ids_shape)
        features_shape = self.embedding.compute_output_shape(token_ids_shape)
        for rnn in self.rnn_layers:
            rnn.build(features_shape)
            features_shape = tuple(features_shape[:-1]) + (self.output_width,)
        self.built = True

    @property
    def output_width(self) -> int:
        """The width of the outputs and of each final state: `units`, doubled when bidirectional."""
        return 2 * self.units if self.bidirectional else self.units

    def call(self, token_ids: Any, padding_mask: Any = None, training: bool | None = None) -> tuple[Any, list[Any]]:
        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, 0)
        outputs = self.embedding(token_ids)
        layer_states = []
        for rnn in self.rnn_layers:
            outputs, *states = rnn(self.dropout_layer(outputs, training=training), mask=padding_mask, training=training)
            if self.bidirectional:  # [forward states..., backward states...] -> each kind concatenated
                half = len(states) // 2
                states = [ops.concatenate(pair, axis=-1) for pair in zip(states[:half], states[half:])]
            layer_states.append(states)
        return outputs, [ops.stack(kind, axis=1) for kind in zip(*layer_states)]

    def compute_mask(self, token_ids: Any, mask: Any = None) -> Any:
        return ops.not_equal(token_ids, 0)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "cell": self.cell,
                "num_layers": self.num_layers,
                "bidirectional": self.bidirectional,
                "dropout": self.dropout,
            }
        )
        if self.shares_embedding:
            config["embedding"] = keras.layers.serialize(self.embedding)
        return config

    @classmethod
    def from_config(cls, config: dict) -> RNNEncoder:
        if "embedding" in config:
            config = {**config, "embedding": keras.layers.deserialize(config["embedding"])}
        return cls(**config)
