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

from kerasllm.layers import Dense, tied_logits
from kerasllm.models.backbones import TransformerDecoder, TransformerEncoder
from kerasllm.models.untie import untied_copy


@keras.saving.register_keras_serializable(package="kerasllm")
class Transformer(keras.Model):
    """Sequence-to-sequence Transformer: a `TransformerEncoder`, a `TransformerDecoder` attending over its output,
    and a float32 output projection.

    Token id 0 is padding everywhere: the encoder padding mask is `encoder_tokens != 0`, and the output logits carry
    the decoder mask `decoder_inputs != 0` as a Keras mask (so Keras losses and metrics skip padded positions).
    Dropout is applied to the embeddings-plus-positions and to every sub-layer output (§5.4).

    Args:
        source_vocabulary_size: int, the number of source token ids.
        target_vocabulary_size: int, the number of target token ids.
        num_encoder_layers: int. Defaults to `6`.
        num_decoder_layers: int. Defaults to `6`.
        hidden_dim: int, the model width (the paper's d_model). Defaults to `512`.
        num_heads: int, attention heads (each hidden_dim // num_heads wide). Defaults to `8`.
        intermediate_dim: int, the feed-forward inner size (the paper's d_ff). Defaults to `2048`.
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
        num_decoder_layers=2, hidden_dim=32, num_heads=4, intermediate_dim=64, max_length=16)
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
        hidden_dim: int = 512,
        num_heads: int = 8,
        intermediate_dim: int = 2048,
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
        stack_args = dict(
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_length=max_length,
            position=position,
            normalize_first=normalize_first,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=dtype,
        )
        self.encoder = TransformerEncoder(source_vocabulary_size, num_encoder_layers, **stack_args, name="encoder")
        self.decoder = TransformerDecoder(
            target_vocabulary_size,
            num_decoder_layers,
            **stack_args,
            cross_attention=True,
            embedding=self.encoder.embedding if share_embeddings else None,
            name="decoder",
        )
        self.output_projection = None
        if not tie_output_embedding:
            # float32 under any policy: the logits feed the softmax and the loss.
            self.output_projection = Dense(target_vocabulary_size, dtype="float32", name="output_projection")

        # === Functional model ===
        encoder_tokens = keras.Input(shape=(None,), dtype="int32", name="encoder_tokens")
        decoder_tokens = keras.Input(shape=(None,), dtype="int32", name="decoder_tokens")
        hidden = self.decoder(
            {
                "token_ids": decoder_tokens,
                "memory": self.encoder(encoder_tokens),
                "memory_padding_mask": ops.not_equal(encoder_tokens, 0),
            }
        )
        super().__init__(inputs=(encoder_tokens, decoder_tokens), outputs=self._logits(hidden), dtype=dtype, **kwargs)
        if dtype is not None:  # keras.Model's functional constructor ignores dtype: keep it for the config
            self.dtype_policy = dtype

        # === Config ===
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_length = max_length
        self.position = position
        self.normalize_first = normalize_first
        self.activation = activation
        self.share_embeddings = share_embeddings
        self.tie_output_embedding = tie_output_embedding
        self.layer_norm_epsilon = layer_norm_epsilon

    def _logits(self, hidden: Any) -> Any:
        if self.output_projection is not None:
            return self.output_projection(hidden)
        return tied_logits(self.decoder.token_embedding, hidden)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return ops.not_equal(inputs[1], 0)

    def encode(self, encoder_tokens: Any, training: bool = False) -> dict[str, Any]:
        """Run the encoder once per source.

        Returns:
            A dict of batch-major tensors: `"memory"` [B, S, hidden_dim], `"padding_mask"` [B, S] bool, and for
            each decoder layer i the cross-attention keys/values projected once, `"cross_key_{i}"` and
            `"cross_value_{i}"`, each [B, S, num_heads, hidden_dim // num_heads].
        """
        encoder_tokens = ops.convert_to_tensor(encoder_tokens, dtype="int32")
        memory = self.encoder(encoder_tokens, training=training)
        state = {"memory": memory, "padding_mask": ops.not_equal(encoder_tokens, 0)}
        return {**state, **self.decoder.project_memory(memory)}

    def init_cache(self, encoder_state: dict[str, Any], max_length: int) -> dict[str, Any]:
        """Zeroed self-attention caches preallocated to `max_length` decoder positions.

        Returns:
            A dict with `"key_{i}"` and `"value_{i}"` for each decoder layer i, each
            [B, max_length, num_heads, hidden_dim // num_heads] in the decoder layers' compute dtype.
        """
        return self.decoder.init_cache(ops.shape(encoder_state["memory"])[0], max_length)

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
        hidden, new_cache = self.decoder.call_with_cache(
            ops.expand_dims(token_ids, 1),
            cache,
            index,
            memory_key_value=encoder_state,  # holds the decoder's projected memory, "cross_key_{i}" / "cross_value_{i}"
            memory_padding_mask=encoder_state["padding_mask"],
        )
        return self._logits(hidden[:, 0]), new_cache

    def untied(self) -> Transformer:
        """The same function with the output projection as its own [hidden_dim, V] kernel, E^T, and a zero bias.

        For serving (`kerasllm.export.serving_copy` calls it): a decoding step reads that layout faster
        (`kerasllm.models.untie.untied_copy`; figures in bench/README.md). A model that is not tied is returned
        as it is.
        """
        return untied_copy(self, self.decoder.token_embedding)

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
        padding_mask, memory_padding_mask = ops.not_equal(decoder_inputs, 0), ops.not_equal(encoder_tokens, 0)
        masks = dict(padding_mask=padding_mask, memory_padding_mask=memory_padding_mask)
        memory = self.encoder(encoder_tokens, training=False)
        hidden = self.decoder.embedding(decoder_inputs)
        decoder_layers = self.decoder.transformer_layers
        last = range(len(decoder_layers))[layer]
        for decoder_layer in decoder_layers[:last]:
            hidden = decoder_layer(hidden, memory, **masks, training=False)
        _, scores = decoder_layers[last](hidden, memory, **masks, return_attention_scores=True, training=False)
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
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
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
    def from_config(cls, config: dict) -> Transformer:
        return cls(**config)
