"""The encoder-decoder Transformer of "Attention Is All You Need" (Vaswani et al., 2017), with incremental decoding.

Decoding interface (shared with `LSTMSeq2Seq`; every tensor batch-major so beam search can gather/repeat axis 0):

    model((encoder_tokens, decoder_inputs)) -> logits [B, T, V] float32
    model.encode(encoder_tokens) -> encoder_state
    model.init_cache(encoder_state, max_length) -> cache
    model.decode_step(token_ids, index, cache, encoder_state) -> (logits [B, V] float32, new_cache)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.layers import (
    Dense,
    TokenAndPositionEmbedding,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    tied_logits,
)
from kerasllm.models.untie import untied_copy


@keras.saving.register_keras_serializable(package="kerasllm")
class Transformer(keras.Model):
    """Sequence-to-sequence Transformer: an encoder stack, a causal decoder stack, and a float32 output projection.

    Token id 0 is padding everywhere: the encoder padding mask is `encoder_tokens != 0`, and the output logits carry
    the decoder mask `decoder_inputs != 0` as a Keras mask (so Keras losses and metrics skip padded positions).
    Dropout is applied to the embeddings-plus-positions and to every sub-layer output (§5.4).

    Args:
        source_vocabulary_size: int, the number of source token ids.
        target_vocabulary_size: int, the number of target token ids.
        num_encoder_layers: int. Defaults to `6`.
        num_decoder_layers: int. Defaults to `6`.
        d_model: int, the model width. Defaults to `512`.
        num_heads: int, attention heads (each d_model // num_heads wide). Defaults to `8`.
        dff: int, the feed-forward inner size. Defaults to `2048`.
        dropout: float, P_drop. Defaults to `0.1`.
        max_length: int, the longest sequence (bounds learned positions and decoding). Defaults to `256`.
        position: `"sinusoidal"` (paper) or `"learned"`. Defaults to `"sinusoidal"`.
        normalize_first: bool, pre-norm layers plus a final LayerNorm per stack. Defaults to `False` (paper).
        activation: feed-forward activation, `"relu"` (paper) or `"gelu"`. Defaults to `"relu"`.
        share_embeddings: bool, one embedding for source and target (requires equal vocabulary sizes: a shared
            vocabulary). Defaults to `False`.
        tie_output_embedding: bool, compute the logits with the target embedding matrix transposed (§3.4).
            Defaults to `False`.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, ...).

    Example:

    ```python
    model = kerasllm.models.Transformer(
        source_vocabulary_size=100, target_vocabulary_size=100, num_encoder_layers=2,
        num_decoder_layers=2, d_model=32, num_heads=4, dff=64, max_length=16)
    source = np.array([[5, 6, 7, 3, 0]], dtype="int32")
    target_in = np.array([[2, 8, 9, 0]], dtype="int32")
    logits = model((source, target_in))  # [1, 4, 100] float32
    ```
    """

    def __init__(
        self,
        source_vocabulary_size: int,
        target_vocabulary_size: int,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        d_model: int = 512,
        num_heads: int = 8,
        dff: int = 2048,
        dropout: float = 0.1,
        max_length: int = 256,
        position: str = "sinusoidal",
        normalize_first: bool = False,
        activation: str = "relu",
        share_embeddings: bool = False,
        tie_output_embedding: bool = False,
        layer_norm_epsilon: float = 1e-5,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if share_embeddings and source_vocabulary_size != target_vocabulary_size:
            raise ValueError("share_embeddings needs one shared vocabulary: the vocabulary sizes differ.")

        # === Layers ===
        def embedding(vocabulary_size: int, name: str) -> TokenAndPositionEmbedding:
            return TokenAndPositionEmbedding(
                vocabulary_size, max_length, d_model, position=position, dtype=dtype, name=name
            )

        layer_args = dict(
            num_heads=num_heads,
            intermediate_dim=dff,
            dropout=dropout,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            normalize_first=normalize_first,
            dtype=dtype,
        )
        if share_embeddings:
            self.source_embedding = self.target_embedding = embedding(source_vocabulary_size, "shared_embedding")
        else:
            self.source_embedding = embedding(source_vocabulary_size, "source_embedding")
            self.target_embedding = embedding(target_vocabulary_size, "target_embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embedding_dropout")
        self.encoder_layers = [
            TransformerEncoderLayer(**layer_args, name=f"encoder_layer_{index}") for index in range(num_encoder_layers)
        ]
        self.decoder_layers = [
            TransformerDecoderLayer(**layer_args, name=f"decoder_layer_{index}") for index in range(num_decoder_layers)
        ]
        self.encoder_output_norm = self.decoder_output_norm = None
        if normalize_first:
            # Pre-norm residual streams are never normalized inside the stack, so each stack ends with a LayerNorm.
            self.encoder_output_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="encoder_output_norm"
            )
            self.decoder_output_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="decoder_output_norm"
            )
        self.output_projection = None
        if not tie_output_embedding:
            # float32 under any policy: the logits feed the softmax and the loss.
            self.output_projection = Dense(
                target_vocabulary_size, dtype="float32", name="output_projection"
            )

        # === Functional model ===
        encoder_tokens = keras.Input(shape=(None,), dtype="int32", name="encoder_tokens")
        decoder_tokens = keras.Input(shape=(None,), dtype="int32", name="decoder_tokens")
        encoder_padding_mask = ops.not_equal(encoder_tokens, 0)
        memory = self._encode(encoder_tokens, encoder_padding_mask, training=None)
        hidden = self.embedding_dropout(self.target_embedding(decoder_tokens))
        decoder_padding_mask = ops.not_equal(decoder_tokens, 0)
        for layer in self.decoder_layers:
            hidden = layer(hidden, memory, inputs_mask=decoder_padding_mask, memory_mask=encoder_padding_mask)
        logits = self._logits(hidden)
        super().__init__(inputs=(encoder_tokens, decoder_tokens), outputs=logits, dtype=dtype, **kwargs)

        # === Config ===
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
        self.d_model = d_model
        self.num_heads = num_heads
        self.dff = dff
        self.dropout = dropout
        self.max_length = max_length
        self.position = position
        self.normalize_first = normalize_first
        self.activation = activation
        self.share_embeddings = share_embeddings
        self.tie_output_embedding = tie_output_embedding
        self.layer_norm_epsilon = layer_norm_epsilon

    def _encode(self, encoder_tokens: Any, padding_mask: Any, training: bool | None) -> Any:
        hidden = self.embedding_dropout(self.source_embedding(encoder_tokens), training=training)
        for layer in self.encoder_layers:
            hidden = layer(hidden, mask=padding_mask, training=training)
        return hidden if self.encoder_output_norm is None else self.encoder_output_norm(hidden)

    def _logits(self, hidden: Any) -> Any:
        if self.decoder_output_norm is not None:
            hidden = self.decoder_output_norm(hidden)
        if self.output_projection is not None:
            return self.output_projection(hidden)
        return tied_logits(self.target_embedding.token_embedding, hidden)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return ops.not_equal(inputs[1], 0)

    def encode(self, encoder_tokens: Any, training: bool = False) -> dict[str, Any]:
        """Run the encoder once per source.

        Returns:
            A dict of batch-major tensors: `"memory"` [B, S, d_model], `"padding_mask"` [B, S] bool, and for each
            decoder layer i the cross-attention keys/values projected once, `"cross_key_{i}"` and
            `"cross_value_{i}"`, each [B, S, num_heads, d_model // num_heads].
        """
        encoder_tokens = ops.convert_to_tensor(encoder_tokens, dtype="int32")
        padding_mask = ops.not_equal(encoder_tokens, 0)
        memory = self._encode(encoder_tokens, padding_mask, training=training)
        state = {"memory": memory, "padding_mask": padding_mask}
        for index, layer in enumerate(self.decoder_layers):
            state[f"cross_key_{index}"], state[f"cross_value_{index}"] = layer.cross_attention.project_key_value(memory)
        return state

    def init_cache(self, encoder_state: dict[str, Any], max_length: int) -> dict[str, Any]:
        """Zeroed self-attention caches preallocated to `max_length` decoder positions.

        Returns:
            A dict with `"key_{i}"` and `"value_{i}"` for each decoder layer i, each
            [B, max_length, num_heads, d_model // num_heads] in the decoder layers' compute dtype.
        """
        batch_size = ops.shape(encoder_state["memory"])[0]
        shape = (batch_size, max_length, self.num_heads, self.d_model // self.num_heads)
        # The dtype the decoder layers compute in, not the model's: a model built under a mixed policy and
        # reloaded under float32 keeps bfloat16/float16 layers, and a while_loop needs the cache dtype to match.
        dtype = self.target_embedding.compute_dtype
        cache = {}
        for index in range(self.num_decoder_layers):
            cache[f"key_{index}"] = ops.zeros(shape, dtype=dtype)
            cache[f"value_{index}"] = ops.zeros(shape, dtype=dtype)
        return cache

    def decode_step(
        self, token_ids: Any, index: Any, cache: dict[str, Any], encoder_state: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Decode one position with the cache: the logits for position `index + 1`.

        Args:
            token_ids: [B] int32, the decoder input at position `index` (index 0 holds [START]).
            index: scalar int32 tensor, the position being fed.
            cache: from `init_cache` or a previous `decode_step`.
            encoder_state: from `encode`.

        Returns:
            `(logits [B, V] float32, new_cache)`, `new_cache` with the structure, shapes and dtypes of `cache`.
        """
        hidden = self.target_embedding(ops.expand_dims(token_ids, 1), start_index=index)
        new_cache = {}
        for layer_index, layer in enumerate(self.decoder_layers):
            key, value = f"key_{layer_index}", f"value_{layer_index}"
            hidden, (new_cache[key], new_cache[value]) = layer(
                hidden,
                memory_mask=encoder_state["padding_mask"],
                cache=(cache[key], cache[value]),
                cache_update_index=index,
                memory_key_value=(
                    encoder_state[f"cross_key_{layer_index}"],
                    encoder_state[f"cross_value_{layer_index}"],
                ),
                training=False,
            )
        return self._logits(hidden[:, 0]), new_cache

    def untied(self) -> Transformer:
        """The same function with the output projection as its own [d_model, V] kernel, E^T, and a zero bias.

        For serving (`export_translator` calls it): a decoding step reads that layout about twice as fast, and
        the logits are about a fifth of a greedy step (`kerasllm.models.untie.untied_copy`). A model that is
        not tied is returned as it is.
        """
        return untied_copy(self, self.target_embedding.token_embedding)

    def cross_attention_scores(self, encoder_tokens: Any, decoder_inputs: Any, layer: int = -1) -> Any:
        """Where each target position looks in the source: one decoder layer's cross-attention probabilities.

        Args:
            encoder_tokens: [B, S] int source ids.
            decoder_inputs: [B, T] int decoder inputs ([START] + target ids).
            layer: which decoder layer (Python indexing; default the last).

        Returns:
            [B, num_heads, T, S] float32 probabilities (rows sum to 1 over the source's real tokens).
        """
        encoder_tokens = ops.convert_to_tensor(encoder_tokens, dtype="int32")
        decoder_inputs = ops.convert_to_tensor(decoder_inputs, dtype="int32")
        encoder_mask, decoder_mask = ops.not_equal(encoder_tokens, 0), ops.not_equal(decoder_inputs, 0)
        memory = self._encode(encoder_tokens, encoder_mask, training=False)
        hidden = self.target_embedding(decoder_inputs)
        last = range(len(self.decoder_layers))[layer]
        for decoder_layer in self.decoder_layers[:last]:
            hidden = decoder_layer(hidden, memory, inputs_mask=decoder_mask, memory_mask=encoder_mask, training=False)
        _, scores = self.decoder_layers[last](hidden, memory, inputs_mask=decoder_mask, memory_mask=encoder_mask,
                                              return_attention_scores=True, training=False)
        return scores

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "num_encoder_layers": self.num_encoder_layers,
            "num_decoder_layers": self.num_decoder_layers,
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "dff": self.dff,
            "dropout": self.dropout,
            "max_length": self.max_length,
            "position": self.position,
            "normalize_first": self.normalize_first,
            "activation": self.activation,
            "share_embeddings": self.share_embeddings,
            "tie_output_embedding": self.tie_output_embedding,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config: dict) -> "Transformer":
        return cls(**config)
