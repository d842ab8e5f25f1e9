"""The Transformer's encoder and decoder layers (Vaswani et al., 2017, §3.1, Figure 1).

Each sub-layer (attention or feed-forward) is wrapped in a residual connection with layer normalization and
dropout. Post-norm is the paper's LayerNorm(x + Dropout(Sublayer(x))) (§3.1, §5.4); pre-norm
(`normalize_first=True`) is x + Dropout(Sublayer(LayerNorm(x))), which trains more stably in deep stacks (the
model then ends each stack with a final LayerNorm).

A decoder layer built with a memory is the paper's (self-attention, cross-attention, feed-forward); built without
one it is a GPT block (causal self-attention, feed-forward), as keras-hub's `TransformerDecoder` decides it.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

# Not in Keras's public API; keras-hub's Transformer layers read the upstream Keras mask through it too.
from keras.src.backend import get_keras_mask

from kerasllm.layers.attention import MultiHeadAttention
from kerasllm.layers.feed_forward import FeedForward


class _TransformerLayer(keras.layers.Layer):
    """Hyperparameters and sub-layer factories shared by the encoder and decoder layers."""

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation: Any = "relu",
        layer_norm_epsilon: float = 1e-5,
        normalize_first: bool = False,
        fused_qkv: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = keras.activations.serialize(keras.activations.get(activation))
        self.layer_norm_epsilon = layer_norm_epsilon
        self.normalize_first = normalize_first
        self.fused_qkv = fused_qkv
        self.kernel_initializer = keras.initializers.serialize(keras.initializers.get(kernel_initializer))
        self.bias_initializer = keras.initializers.serialize(keras.initializers.get(bias_initializer))
        self.supports_masking = True

    def _attention(self, name: str) -> MultiHeadAttention:
        return MultiHeadAttention(
            self.num_heads,
            fused_qkv=self.fused_qkv,
            attention_dropout=self.attention_dropout,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _layer_norm(self, name: str, inputs_shape: tuple) -> keras.layers.LayerNormalization:
        norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
        norm.build(inputs_shape)
        return norm

    def _build_feedforward(self, inputs_shape: tuple) -> None:
        self.feedforward = FeedForward(
            self.intermediate_dim,
            activation=self.activation,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="feedforward",
        )
        self.feedforward.build(inputs_shape)
        self.feedforward_layer_norm = self._layer_norm("feedforward_layer_norm", inputs_shape)
        # One Dropout serves every sub-layer: it has no weights, and each call draws a fresh mask.
        self.residual_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="residual_dropout")

    def _feedforward_block(self, x: Any, training: bool | None) -> Any:
        residual = x
        if self.normalize_first:
            x = self.feedforward_layer_norm(x)
        x = residual + self.residual_dropout(self.feedforward(x), training=training)
        return x if self.normalize_first else self.feedforward_layer_norm(x)

    def compute_mask(self, inputs: Any, mask: Any = None, **kwargs: Any) -> Any:
        return mask

    def compute_output_shape(self, inputs_shape: tuple, *args: Any) -> tuple:
        return inputs_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "normalize_first": self.normalize_first,
                "fused_qkv": self.fused_qkv,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kerasllm")
class TransformerEncoderLayer(_TransformerLayer):
    """One encoder layer: self-attention over the source, then the feed-forward network (§3.1).

    Args:
        num_heads: int, the number of attention heads; must divide the model width (hidden_dim).
        intermediate_dim: int, the feed-forward inner size (the paper's d_ff).
        dropout: float, dropout on each sub-layer's output before the residual add (P_drop, §5.4).
            Defaults to `0.0`.
        attention_dropout: float, dropout on the attention probabilities (not in the paper). Defaults to `0.0`.
        activation: the feed-forward activation, `"relu"` (paper) or `"gelu"`. Defaults to `"relu"`.
        layer_norm_epsilon: float. Defaults to `1e-5`, like keras-hub.
        normalize_first: bool, pre-norm instead of the paper's post-norm. Defaults to `False`.
        fused_qkv: bool, fuse the attention projections into one matmul. Defaults to `True`.
        kernel_initializer: initializer of the dense kernels. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the dense biases. Defaults to `"zeros"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: [B, S, hidden_dim] tensor.
        padding_mask: boolean [B, S], True for real tokens; the upstream Keras mask when not given (e.g. from
            `TokenAndPositionEmbedding(mask_zero=True)`). Padded keys get no attention.
        return_attention_scores: bool, also return the self-attention probabilities [B, heads, S, S].
        training: bool, whether dropout is active.

    Example:

    ```python
    layer = kerasllm.layers.TransformerEncoderLayer(num_heads=4, intermediate_dim=128)
    x = np.random.uniform(size=(2, 10, 64)).astype("float32")
    y = layer(x, padding_mask=np.ones((2, 10), dtype=bool))  # [2, 10, 64]
    ```
    """

    def build(self, inputs_shape: tuple) -> None:
        self.self_attention = self._attention("self_attention")
        self.self_attention.build(inputs_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm", inputs_shape)
        self._build_feedforward(inputs_shape)
        self.built = True

    def call(
        self,
        inputs: Any,
        padding_mask: Any = None,
        return_attention_scores: bool = False,
        training: bool | None = None,
    ) -> Any:
        padding_mask = get_keras_mask(inputs) if padding_mask is None else padding_mask
        attention_mask = None if padding_mask is None else ops.expand_dims(padding_mask, 1)  # [B, 1, S], all queries
        residual = inputs
        x = self.self_attention_layer_norm(inputs) if self.normalize_first else inputs
        x = self.self_attention(
            x, attention_mask=attention_mask, return_attention_scores=return_attention_scores, training=training
        )
        x, scores = x if return_attention_scores else (x, None)
        x = residual + self.residual_dropout(x, training=training)
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)
        x = self._feedforward_block(x, training)
        return (x, scores) if return_attention_scores else x


@keras.saving.register_keras_serializable(package="kerasllm")
class TransformerDecoderLayer(_TransformerLayer):
    """One decoder layer: causal self-attention, then cross-attention over a memory if any, then feed-forward (§3.1).

    `build` decides the kind, like keras-hub's `TransformerDecoder`: built with a `memory_shape` (first called with
    a memory) the layer has cross-attention, the paper's decoder layer; built without one it is a GPT block. Call it
    with a memory exactly when it was built with one.

    For incremental decoding pass `cache` (this layer's preallocated self-attention keys/values) with
    `cache_update_index`, and the memory as `memory_key_value` (from `layer.cross_attention.project_key_value(memory)`,
    computed once per source) instead of `memory`.

    Args:
        num_heads: int, the number of attention heads; must divide the model width (hidden_dim).
        intermediate_dim: int, the feed-forward inner size (the paper's d_ff).
        dropout: float, dropout on each sub-layer's output before the residual add (P_drop, §5.4).
            Defaults to `0.0`.
        attention_dropout: float, dropout on the attention probabilities (not in the paper). Defaults to `0.0`.
        activation: the feed-forward activation, `"relu"` (paper) or `"gelu"`. Defaults to `"relu"`.
        layer_norm_epsilon: float. Defaults to `1e-5`, like keras-hub.
        normalize_first: bool, pre-norm instead of the paper's post-norm. Defaults to `False`.
        fused_qkv: bool, fuse the attention projections into one matmul. Defaults to `True`.
        kernel_initializer: initializer of the dense kernels. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the dense biases. Defaults to `"zeros"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: [B, T, hidden_dim] decoder tensor.
        memory: [B, S, D_m] memory (the encoder output) for a layer with cross-attention; may be `None` when
            `memory_key_value` is given.
        padding_mask: boolean [B, T] (True = real token), used as a key mask together with the causal mask; the
            upstream Keras mask of `inputs` when not given. With right padding, causality already hides pad keys
            from every real position, so it only changes outputs at pad positions. Ignored with a cache.
        memory_padding_mask: boolean [B, S], True for the memory's real tokens; the Keras mask of `memory` when
            not given.
        cache: optional `(key_cache, value_cache)`, each [B, max_length, heads, hidden_dim // heads].
        cache_update_index: int or scalar int tensor, the position of `inputs[:, 0]`. Defaults to `0`.
        memory_key_value: optional precomputed cross-attention `(key, value)`, each [B, S, heads, head_dim].
        return_attention_scores: bool, also return the cross-attention probabilities [B, heads, T, S] (layers
            with cross-attention only).
        training: bool, whether dropout is active.

    Returns:
        `outputs` [B, T, hidden_dim], then `new_cache` if a cache was given, then the scores if asked for.

    Example:

    ```python
    layer = kerasllm.layers.TransformerDecoderLayer(num_heads=4, intermediate_dim=128)
    memory = np.random.uniform(size=(2, 12, 64)).astype("float32")
    x = np.random.uniform(size=(2, 10, 64)).astype("float32")
    y = layer(x, memory, memory_padding_mask=np.ones((2, 12), dtype=bool))  # [2, 10, 64]
    gpt_block = kerasllm.layers.TransformerDecoderLayer(num_heads=4, intermediate_dim=128)
    y = gpt_block(x)  # [2, 10, 64], no cross-attention weights
    ```
    """

    def build(self, inputs_shape: tuple, memory_shape: tuple | None = None) -> None:
        self.self_attention = self._attention("self_attention")
        self.self_attention.build(inputs_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm", inputs_shape)
        self.cross_attention = self.cross_attention_layer_norm = None
        if memory_shape is not None:
            self.cross_attention = self._attention("cross_attention")
            self.cross_attention.build(inputs_shape, memory_shape)
            self.cross_attention_layer_norm = self._layer_norm("cross_attention_layer_norm", inputs_shape)
        self._build_feedforward(inputs_shape)
        self.built = True

    def call(
        self,
        inputs: Any,
        memory: Any = None,
        padding_mask: Any = None,
        memory_padding_mask: Any = None,
        cache: tuple[Any, Any] | None = None,
        cache_update_index: Any = 0,
        memory_key_value: tuple[Any, Any] | None = None,
        return_attention_scores: bool = False,
        training: bool | None = None,
    ) -> Any:
        has_memory = memory is not None or memory_key_value is not None
        if has_memory and self.cross_attention is None:
            raise ValueError(
                f"TransformerDecoderLayer {self.name!r} was built without cross-attention (its first call had no "
                "memory), so it takes no `memory` or `memory_key_value`; build a new layer with a memory for that."
            )
        if self.cross_attention is not None and not has_memory:
            raise ValueError(
                f"TransformerDecoderLayer {self.name!r} was built with cross-attention: every call needs `memory` "
                "or `memory_key_value`."
            )
        if return_attention_scores and not has_memory:
            raise ValueError("return_attention_scores returns cross-attention scores: this layer has no memory.")
        self_mask = None
        if cache is None:
            padding_mask = get_keras_mask(inputs) if padding_mask is None else padding_mask
            self_mask = None if padding_mask is None else ops.expand_dims(padding_mask, 1)
        residual = inputs
        x = self.self_attention_layer_norm(inputs) if self.normalize_first else inputs
        x = self.self_attention(
            x,
            attention_mask=self_mask,
            use_causal_mask=True,
            cache=cache,
            cache_update_index=cache_update_index,
            training=training,
        )
        x, cache = x if cache is not None else (x, None)
        x = residual + self.residual_dropout(x, training=training)
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        scores = None
        if has_memory:
            if memory_padding_mask is None and memory is not None:
                memory_padding_mask = get_keras_mask(memory)
            residual = x
            if self.normalize_first:
                x = self.cross_attention_layer_norm(x)
            x = self.cross_attention(
                x,
                memory,
                attention_mask=None if memory_padding_mask is None else ops.expand_dims(memory_padding_mask, 1),
                precomputed_key_value=memory_key_value,
                return_attention_scores=return_attention_scores,
                training=training,
            )
            x, scores = x if return_attention_scores else (x, None)
            x = residual + self.residual_dropout(x, training=training)
            if not self.normalize_first:
                x = self.cross_attention_layer_norm(x)

        x = self._feedforward_block(x, training)
        results = (x,) + ((cache,) if cache is not None else ()) + ((scores,) if return_attention_scores else ())
        return results[0] if len(results) == 1 else results
