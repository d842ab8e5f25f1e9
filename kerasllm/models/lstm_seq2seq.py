"""The LSTM encoder-decoder baseline (Sutskever et al., 2014), optionally with Luong or Bahdanau attention.

It implements the same decoding interface as `kerasllm.models.Transformer`; its LSTM states play the cache.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.layers import Dense, LSTMDecoder, RNNEncoder, tied_logits
from kerasllm.layers.lstm_decoder import ATTENTION_TYPES
from kerasllm.models.untie import untied_copy


@keras.saving.register_keras_serializable(package="kerasllm")
class LSTMSeq2Seq(keras.Model):
    """LSTM encoder-decoder: the encoder's final states initialize the decoder, trained with teacher forcing.

    The encoder is an `RNNEncoder`: masked (token id 0 is padding), so its final states are those of each
    sequence's last real token, and attention never looks at padding. With `bidirectional_encoder`, each encoder
    layer reads both ways and its final states are the forward and backward ones concatenated; a Dense "bridge"
    maps encoder states to the decoder size when the widths differ. The output logits are float32 and carry the
    decoder mask `decoder_inputs != 0` as a Keras mask.

    Dropout is applied to the embeddings, between encoder layers and to the decoder outputs, not inside the
    recurrence.

    With `tie_output_embedding`, a linear layer maps the decoder output to `embedding_dim` and the logits are its
    product with the target embedding matrix (Press & Wolf, 2017; Inan et al., 2017): on a corpus as small as
    Multi30K the shared matrix generalizes better, and the [units x vocabulary] output matmul, a large share of a
    training step's FLOPs, shrinks to [embedding_dim x vocabulary].

    Args:
        source_vocabulary_size: int, the number of source token ids.
        target_vocabulary_size: int, the number of target token ids.
        embedding_dim: int. Defaults to `256`.
        units: int, the LSTM size of every decoder layer. Defaults to `512`.
        encoder_units: int, the LSTM size of every encoder layer (of each direction of a bidirectional encoder);
            `None` for `units`. A narrower encoder is cheaper: a bidirectional encoder runs two LSTMs per source
            token. Defaults to `None`.
        num_layers: int, stacked LSTM layers in the encoder and in the decoder. Defaults to `1`.
        attention: `None`, `"luong_dot"`, `"luong_general"` or `"bahdanau"`. Defaults to `None`.
        bidirectional_encoder: bool. Defaults to `False`. (`"luong_dot"` needs a memory as wide as the decoder,
            and a bidirectional encoder's is 2 * encoder_units wide.)
        dropout: float. Defaults to `0.0`.
        tie_output_embedding: bool, compute the logits with the target embedding matrix transposed, after a
            linear map to `embedding_dim`. Defaults to `False`.
        output_bottleneck: bool, map the decoder output linearly to `embedding_dim` before the output
            projection; `None` does so exactly when the output is tied (which needs it). An untied model with
            the bottleneck is the form `untied()` serves a tied one in. Defaults to `None`.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, ...).

    Example:

    ```python
    model = kerasllm.models.LSTMSeq2Seq(
        source_vocabulary_size=100, target_vocabulary_size=100, embedding_dim=16, units=32,
        attention="bahdanau")
    source = np.array([[5, 6, 7, 3, 0]], dtype="int32")
    target_in = np.array([[2, 8, 9, 0]], dtype="int32")
    logits = model((source, target_in))  # [1, 4, 100] float32
    ```
    """

    def __init__(
        self,
        source_vocabulary_size: int,
        target_vocabulary_size: int,
        embedding_dim: int = 256,
        units: int = 512,
        num_layers: int = 1,
        attention: str | None = None,
        bidirectional_encoder: bool = False,
        dropout: float = 0.0,
        encoder_units: int | None = None,
        tie_output_embedding: bool = False,
        output_bottleneck: bool | None = None,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if attention not in ATTENTION_TYPES:
            raise ValueError(f"attention must be one of {ATTENTION_TYPES}, got {attention!r}.")
        encoder_units = units if encoder_units is None else encoder_units
        memory_width = 2 * encoder_units if bidirectional_encoder else encoder_units
        output_bottleneck = tie_output_embedding if output_bottleneck is None else output_bottleneck
        if tie_output_embedding and not output_bottleneck:
            raise ValueError(
                "tie_output_embedding needs output_bottleneck: the tied logits are computed from "
                "an embedding_dim-wide vector."
            )
        if attention == "luong_dot" and memory_width != units:
            raise ValueError(
                f'attention="luong_dot" needs a memory as wide as the decoder ({memory_width} != {units} units); '
                'use "luong_general".'
            )

        # === Layers ===
        self.encoder = RNNEncoder(
            encoder_units,
            vocabulary_size=source_vocabulary_size,
            embedding_dim=embedding_dim,
            num_layers=num_layers,
            bidirectional=bidirectional_encoder,
            dropout=dropout,
            dtype=dtype,
            name="encoder",
        )
        embedding_args = dict(mask_zero=True, dtype=dtype, name="target_embedding")
        if tie_output_embedding:  # reverse=True computes the tied logits, in float32 for the softmax and the loss
            self.target_embedding = keras.layers.ReversibleEmbedding(
                target_vocabulary_size, embedding_dim, reverse_dtype="float32", **embedding_args
            )
        else:  # a plain Embedding keeps the checkpoints of untied models loadable
            self.target_embedding = keras.layers.Embedding(target_vocabulary_size, embedding_dim, **embedding_args)
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=dtype, name="dropout")
        self.bridge_hidden = self.bridge_cell = None
        if memory_width != units:
            self.bridge_hidden = Dense(units, dtype=dtype, name="bridge_hidden")
            self.bridge_cell = Dense(units, dtype=dtype, name="bridge_cell")
        self.decoder = LSTMDecoder(units, num_layers=num_layers, attention=attention, dtype=dtype, name="decoder")
        self.output_bottleneck = self.output_projection = None
        if output_bottleneck:
            self.output_bottleneck = Dense(embedding_dim, dtype=dtype, name="output_bottleneck")
        if not tie_output_embedding:  # float32 under any policy: the logits feed the softmax and the loss.
            self.output_projection = Dense(target_vocabulary_size, dtype="float32", name="output_projection")

        # === Functional model ===
        encoder_tokens = keras.Input(shape=(None,), dtype="int32", name="encoder_tokens")
        decoder_tokens = keras.Input(shape=(None,), dtype="int32", name="decoder_tokens")
        encoder_padding_mask = ops.not_equal(encoder_tokens, 0)
        memory, hidden, cell = self._encode(encoder_tokens, encoder_padding_mask, training=None)
        outputs = self.decoder(
            self.dropout_layer(self.target_embedding(decoder_tokens)),
            hidden,
            cell,
            memory,
            memory_padding_mask=encoder_padding_mask,
        )
        logits = self._logits(self.dropout_layer(outputs))
        super().__init__(inputs=(encoder_tokens, decoder_tokens), outputs=logits, dtype=dtype, **kwargs)
        if dtype is not None:  # keras.Model's functional constructor ignores dtype: keep it for the config
            self.dtype_policy = dtype

        # === Config ===
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.encoder_units = encoder_units
        self.num_layers = num_layers
        self.attention = attention
        self.bidirectional_encoder = bidirectional_encoder
        self.dropout = dropout
        self.tie_output_embedding = tie_output_embedding

    def untied(self) -> LSTMSeq2Seq:
        """The same function with the output projection as its own [embedding_dim, V] kernel, E^T, after the same
        bottleneck; for serving (`kerasllm.export.serving_copy` calls it; see `kerasllm.models.untie.untied_copy`). A model
        that is not tied is returned as it is."""
        return untied_copy(self, self.target_embedding, output_bottleneck=True)

    def _encode(self, encoder_tokens: Any, padding_mask: Any, training: bool | None) -> tuple[Any, Any, Any]:
        """Returns the memory [B, S, D_m] and the decoder's initial hidden and cell states [B, num_layers, units]."""
        memory, (hidden, cell) = self.encoder(encoder_tokens, padding_mask=padding_mask, training=training)
        if self.bridge_hidden is not None:
            hidden, cell = self.bridge_hidden(hidden), self.bridge_cell(cell)
        return memory, hidden, cell

    def _logits(self, outputs: Any) -> Any:
        if self.output_bottleneck is not None:
            outputs = self.output_bottleneck(outputs)
        if self.output_projection is None:
            return tied_logits(self.target_embedding, outputs)
        return self.output_projection(outputs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return ops.not_equal(inputs[1], 0)

    def encode(self, encoder_tokens: Any, training: bool = False) -> dict[str, Any]:
        """Run the encoder once per source.

        Returns:
            A dict of batch-major tensors: `"memory"` [B, S, D_m], `"padding_mask"` [B, S] bool,
            `"initial_hidden"` and `"initial_cell"` [B, num_layers, units] (the decoder's initial states), and
            with attention `"memory_keys"`, the memory side of the attention score projected once.
        """
        encoder_tokens = ops.convert_to_tensor(encoder_tokens, dtype="int32")
        # A batch of empty sources has no column, and an LSTM cannot scan zero steps: give it one padding
        # column (masked, so the states stay the initial ones and attention sees nothing).
        length = ops.shape(encoder_tokens)[1]
        if not isinstance(length, int):  # unknown until run time, as in a SavedModel signature
            encoder_tokens = ops.pad(encoder_tokens, [[0, 0], [0, ops.maximum(0, 1 - length)]])
        elif length == 0:
            encoder_tokens = ops.pad(encoder_tokens, [[0, 0], [0, 1]])
        padding_mask = ops.not_equal(encoder_tokens, 0)
        memory, hidden, cell = self._encode(encoder_tokens, padding_mask, training=training)
        state = {"memory": memory, "padding_mask": padding_mask, "initial_hidden": hidden, "initial_cell": cell}
        if self.decoder.attention is not None:
            state["memory_keys"] = self.decoder.attention.project_keys(memory)
        return state

    def init_cache(self, encoder_state: dict[str, Any], max_length: int) -> dict[str, Any]:
        """The decoder's recurrent state: `"hidden"` and `"cell"`, each [B, num_layers, units].

        `max_length` is unused (a recurrent state does not grow) and kept for the shared interface.
        """
        return {"hidden": encoder_state["initial_hidden"], "cell": encoder_state["initial_cell"]}

    def decode_step(
        self, token_ids: Any, index: Any, cache: dict[str, Any], encoder_state: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Decode one position: the logits for position `index + 1` and the next recurrent state.

        Args:
            token_ids: [B] int32, the decoder input at position `index` (index 0 holds [START]).
            index: scalar int32 tensor; unused, as the state already encodes the position.
            cache: from `init_cache` or a previous `decode_step`.
            encoder_state: from `encode`.

        Returns:
            `(logits [B, V] float32, new_cache)`, `new_cache` with the structure, shapes and dtypes of `cache`.
        """
        # Embedding a [B, 1] slice (not [B]) keeps the Keras mask off the step input, as in the scanned `call`.
        output, (hidden, cell) = self.decoder.cell.step(
            self.target_embedding(ops.expand_dims(token_ids, 1))[:, 0],
            (cache["hidden"], cache["cell"]),
            encoder_state["memory"],
            encoder_state.get("memory_keys"),
            memory_padding_mask=encoder_state["padding_mask"],
        )
        return self._logits(output), {"hidden": hidden, "cell": cell}

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "encoder_units": self.encoder_units,
            "num_layers": self.num_layers,
            "attention": self.attention,
            "bidirectional_encoder": self.bidirectional_encoder,
            "dropout": self.dropout,
            "tie_output_embedding": self.tie_output_embedding,
            "output_bottleneck": self.output_bottleneck is not None,
        }

    @classmethod
    def from_config(cls, config: dict) -> LSTMSeq2Seq:
        return cls(**config)
