"""Transformer backbones: token ids in, hidden states out, as functional Keras models (keras-hub's backbones' idea).

One set of layers builds every model of kerasllm:

- `TransformerEncoder`: the paper's encoder stack (Vaswani et al., 2017, Figure 1, left). A text classifier is it
  plus a pooled head; the seq2seq `Transformer` feeds its output to a decoder as the memory.
- `TransformerDecoder`: the causal stack. With `cross_attention=True` its layers also attend over a memory (the
  paper's decoder, Figure 1, right); without, it is a GPT (`kerasllm.tasks.CausalLM`). It also runs one position
  or a whole prompt at a time against a preallocated key/value cache, for generation.

Both embed tokens with a `TokenAndPositionEmbedding` (token id 0 is padding), apply dropout to the embedding, run
their layers and, when pre-norm, end with a LayerNorm. A head ties its logits to `backbone.token_embedding`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.layers import TokenAndPositionEmbedding, TransformerDecoderLayer, TransformerEncoderLayer


class _TransformerBackbone(keras.Model):
    """The embedding, dropout and final LayerNorm shared by both backbones, and their config."""

    def __init__(self, *args: Any, dtype: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if dtype is not None:
            # keras.Model's functional constructor ignores `dtype` (keras-hub's Backbone sets it the same way):
            # without this the backbone reports, and its config saves, the global policy, not its layers'.
            self.dtype_policy = dtype

    def _set_config(self, **config: Any) -> None:
        # Set first, as the layers are made from them (a keras.Model takes attributes before its __init__).
        for name, value in config.items():
            setattr(self, name, value)

    def _build_embedding(self, embedding: TokenAndPositionEmbedding | None, dtype: Any) -> None:
        if embedding is None:
            embedding = TokenAndPositionEmbedding(
                self.vocabulary_size,
                self.max_length,
                self.hidden_dim,
                position=self.position,
                dtype=dtype,
                name="embedding",
            )
        elif (embedding.vocabulary_size, embedding.embedding_dim) != (self.vocabulary_size, self.hidden_dim):
            raise ValueError(
                f"The shared embedding is [{embedding.vocabulary_size}, {embedding.embedding_dim}], this backbone "
                f"needs [{self.vocabulary_size}, {self.hidden_dim}] (vocabulary_size, hidden_dim)."
            )
        self.embedding = embedding
        self.embedding_dropout = keras.layers.Dropout(self.dropout, dtype=dtype, name="embedding_dropout")
        self.output_layer_norm = None
        if self.normalize_first:
            # A pre-norm residual stream is never normalized inside the stack: the stack ends with a LayerNorm.
            self.output_layer_norm = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=dtype, name="output_layer_norm"
            )

    def _layer_args(self, dtype: Any) -> dict[str, Any]:
        return dict(
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            normalize_first=self.normalize_first,
            dtype=dtype,
        )

    def _output(self, hidden: Any) -> Any:
        return hidden if self.output_layer_norm is None else self.output_layer_norm(hidden)

    @property
    def token_embedding(self) -> keras.layers.ReversibleEmbedding:
        """The token embedding E [vocabulary_size, hidden_dim]; `embedding(hidden, reverse=True)` (or
        `kerasllm.layers.tied_logits`) computes logits tied to it."""
        return self.embedding.token_embedding

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The padding mask the backbone used, `token_ids != 0`, which its output carries as its Keras mask."""
        token_ids = inputs["token_ids"] if isinstance(inputs, dict) else inputs
        return ops.not_equal(token_ids, 0)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "max_length": self.max_length,
            "position": self.position,
            "normalize_first": self.normalize_first,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config: dict) -> _TransformerBackbone:
        return cls(**config)


@keras.saving.register_keras_serializable(package="kerasllm")
class TransformerEncoder(_TransformerBackbone):
    """The Transformer encoder: token ids [B, S] → hidden states [B, S, hidden_dim] (§3.1, Figure 1, left).

    Token id 0 is padding: the padding mask `token_ids != 0` keeps padded keys out of every self-attention, and
    the output carries it as its Keras mask, so masked layers downstream (pooling, a loss) skip padding too.

    Args:
        vocabulary_size: int, the number of token ids.
        num_layers: int, the number of `TransformerEncoderLayer`s.
        hidden_dim: int, the model width (the paper's d_model).
        num_heads: int, attention heads (each hidden_dim // num_heads wide).
        intermediate_dim: int, the feed-forward inner size (the paper's d_ff).
        dropout: float, P_drop on the embedding and on every sub-layer output (§5.4). Defaults to `0.1`.
        max_length: int, the longest sequence (bounds learned positions). Defaults to `256`.
        position: `"sinusoidal"` (paper) or `"learned"`. Defaults to `"sinusoidal"`.
        normalize_first: bool, pre-norm layers and a final LayerNorm. Defaults to `False` (the paper's post-norm).
        activation: feed-forward activation, `"relu"` (paper) or `"gelu"`. Defaults to `"relu"`.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        dtype: dtype policy of the layers, e.g. `"mixed_bfloat16"`; `None` for the global policy.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    encoder = kerasllm.models.TransformerEncoder(
        vocabulary_size=100, num_layers=2, hidden_dim=32, num_heads=4, intermediate_dim=64)
    token_ids = keras.Input((None,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(token_ids))  # the mask keeps padding out
    classifier = keras.Model(token_ids, keras.layers.Dense(3)(pooled))
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        hidden_dim: int,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_length: int = 256,
        position: str = "sinusoidal",
        normalize_first: bool = False,
        activation: str = "relu",
        layer_norm_epsilon: float = 1e-5,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        self._set_config(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_length=max_length,
            position=position,
            normalize_first=normalize_first,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
        )
        # === Layers ===
        self._build_embedding(None, dtype)
        self.transformer_layers = [
            TransformerEncoderLayer(**self._layer_args(dtype), name=f"encoder_layer_{index}")
            for index in range(num_layers)
        ]

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = ops.not_equal(token_ids, 0)
        hidden = self.embedding_dropout(self.embedding(token_ids))
        for layer in self.transformer_layers:
            hidden = layer(hidden, padding_mask=padding_mask)
        super().__init__(inputs=token_ids, outputs=self._output(hidden), dtype=dtype, **kwargs)


@keras.saving.register_keras_serializable(package="kerasllm")
class TransformerDecoder(_TransformerBackbone):
    """The causal Transformer decoder: token ids [B, T] → hidden states [B, T, hidden_dim], optionally attending over
    a memory (§3.1, Figure 1, right), with a key/value cache for generation.

    - `cross_attention=True`: the inputs are a dict `{"token_ids": [B, T], "memory": [B, S, hidden_dim],
      "memory_padding_mask": [B, S] bool}` (e.g. a `TransformerEncoder`'s output and `source_ids != 0`); every
      layer is causal self-attention, cross-attention over the memory, feed-forward.
    - `cross_attention=False`: the input is the token ids alone and the layers have no cross-attention weights:
      a GPT.

    Generation runs `call_with_cache` on a cache from `init_cache`: a prompt of T tokens in one pass (T > 1), then
    one token per step (T = 1). With cross-attention, `project_memory` projects each layer's memory keys and
    values once per source, for every step to reuse. Dropout is inactive there (inference only).

    Args:
        vocabulary_size, num_layers, hidden_dim, num_heads, intermediate_dim, dropout, max_length, position,
            normalize_first, activation, layer_norm_epsilon, dtype: as `TransformerEncoder`; `max_length` also
            bounds the cache.
        cross_attention: bool, whether the layers attend over a memory. Defaults to `False`.
        embedding: a `TokenAndPositionEmbedding` to use instead of making one, e.g. a seq2seq encoder's when
            source and target share a vocabulary; it must be [vocabulary_size, hidden_dim]. Defaults to `None`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    gpt = kerasllm.models.TransformerDecoder(
        vocabulary_size=100, num_layers=2, hidden_dim=32, num_heads=4, intermediate_dim=64,
        position="learned", normalize_first=True)
    prompt = np.array([[5, 6, 7]], dtype="int32")
    hidden = gpt(prompt)  # [1, 3, 32]
    cache = gpt.init_cache(batch_size=1, max_length=16)
    hidden, cache = gpt.call_with_cache(prompt, cache, 0)  # the prompt in one pass
    step, cache = gpt.call_with_cache(np.array([[8]], dtype="int32"), cache, 3)  # then position 3
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        hidden_dim: int,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_length: int = 256,
        position: str = "sinusoidal",
        normalize_first: bool = False,
        activation: str = "relu",
        layer_norm_epsilon: float = 1e-5,
        cross_attention: bool = False,
        embedding: TokenAndPositionEmbedding | None = None,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        self._set_config(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_length=max_length,
            position=position,
            normalize_first=normalize_first,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            cross_attention=cross_attention,
        )
        # === Layers ===
        self._build_embedding(embedding, dtype)
        self.shares_embedding = embedding is not None
        self.transformer_layers = [
            TransformerDecoderLayer(**self._layer_args(dtype), name=f"decoder_layer_{index}")
            for index in range(num_layers)
        ]

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        inputs, memory_args = token_ids, {}
        if cross_attention:
            # The memory arrives in the layers' compute dtype: an Input converts what it is given to its dtype.
            memory = keras.Input(shape=(None, hidden_dim), dtype=self.embedding.compute_dtype, name="memory")
            memory_padding_mask = keras.Input(shape=(None,), dtype="bool", name="memory_padding_mask")
            inputs = {"token_ids": token_ids, "memory": memory, "memory_padding_mask": memory_padding_mask}
            memory_args = {"memory": memory, "memory_padding_mask": memory_padding_mask}
        padding_mask = ops.not_equal(token_ids, 0)
        hidden = self.embedding_dropout(self.embedding(token_ids))
        for layer in self.transformer_layers:
            hidden = layer(hidden, padding_mask=padding_mask, **memory_args)
        super().__init__(inputs=inputs, outputs=self._output(hidden), dtype=dtype, **kwargs)

    def init_cache(self, batch_size: Any, max_length: int) -> dict[str, Any]:
        """Zeroed self-attention caches preallocated to `max_length` positions.

        Returns:
            A dict with `"key_{i}"` and `"value_{i}"` for each layer i, each
            [batch_size, max_length, num_heads, hidden_dim // num_heads] in the layers' compute dtype.
        """
        shape = (batch_size, max_length, self.num_heads, self.hidden_dim // self.num_heads)
        # The dtype the layers compute in, not the model's: a model built under a mixed policy and reloaded under
        # float32 keeps bfloat16/float16 layers, and a while_loop needs the cache dtype to stay the same.
        dtype = self.embedding.compute_dtype
        cache = {}
        for index in range(self.num_layers):
            cache[f"key_{index}"] = ops.zeros(shape, dtype=dtype)
            cache[f"value_{index}"] = ops.zeros(shape, dtype=dtype)
        return cache

    def project_memory(self, memory: Any) -> dict[str, Any]:
        """Each layer's cross-attention keys and values of a [B, S, hidden_dim] memory, computed once per source.

        Returns:
            A dict with `"cross_key_{i}"` and `"cross_value_{i}"` for each layer i, each
            [B, S, num_heads, hidden_dim // num_heads].
        """
        projected = {}
        for index, layer in enumerate(self.transformer_layers):
            key, value = layer.cross_attention.project_key_value(memory)
            projected[f"cross_key_{index}"], projected[f"cross_value_{index}"] = key, value
        return projected

    def call_with_cache(
        self,
        token_ids: Any,
        cache: dict[str, Any],
        cache_update_index: Any,
        memory_key_value: dict[str, Any] | None = None,
        memory_padding_mask: Any = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Run positions `cache_update_index ... cache_update_index + T - 1` against the cache.

        Args:
            token_ids: [B, T] int32, e.g. a whole prompt (T > 1) or one generated token (T = 1).
            cache: from `init_cache` or a previous call.
            cache_update_index: int or scalar int32 tensor, the position of `token_ids[:, 0]`.
            memory_key_value: with cross-attention, a dict holding `project_memory`'s entries (other entries,
                such as the rest of a seq2seq model's encoder state, are ignored).
            memory_padding_mask: with cross-attention, boolean [B, S], True for the memory's real tokens.

        Returns:
            `(hidden [B, T, hidden_dim], new_cache)`, `new_cache` with the structure, shapes and dtypes of `cache`.
        """
        hidden = self.embedding(token_ids, start_index=cache_update_index)
        new_cache = {}
        for index, layer in enumerate(self.transformer_layers):
            memory_args = {}
            if memory_key_value is not None:
                memory_args = {
                    "memory_key_value": (
                        memory_key_value[f"cross_key_{index}"],
                        memory_key_value[f"cross_value_{index}"],
                    ),
                    "memory_padding_mask": memory_padding_mask,
                }
            key, value = f"key_{index}", f"value_{index}"
            hidden, (new_cache[key], new_cache[value]) = layer(
                hidden,
                cache=(cache[key], cache[value]),
                cache_update_index=cache_update_index,
                training=False,
                **memory_args,
            )
        return self._output(hidden), new_cache

    def get_config(self) -> dict:
        config = super().get_config()
        config["cross_attention"] = self.cross_attention
        if self.shares_embedding:
            config["embedding"] = keras.layers.serialize(self.embedding)
        return config

    @classmethod
    def from_config(cls, config: dict) -> TransformerDecoder:
        if "embedding" in config:
            config = {**config, "embedding": keras.layers.deserialize(config["embedding"])}
        return cls(**config)
