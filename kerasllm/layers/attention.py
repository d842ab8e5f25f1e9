"""Multi-head attention, written to be read against "Attention Is All You Need" (Vaswani et al., 2017, §3.2).

kerasllm writes its own attention, Transformer layers and decoding cache instead of reusing keras-hub's: they are
the heart of the product. Owning them lets us fuse the Q/K/V projections, keep a static-shape key/value cache that
a compiled while-loop can carry, run the softmax in float32 under mixed precision, and make masks that can never
produce NaN, all in code a student can follow line by line against the paper.

Shapes: B batch, T query length, S key length, H heads, D = d_model, d_k = D // H (the paper's d_k = d_v).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from kerasllm.layers.dense import Dense, leading_shape

# Masked logits get this finite number added, not -inf: a row whose keys are all masked (an all-padding source)
# then gets a uniform softmax and a finite output, where -inf would give 0/0 = NaN.
MASKED_LOGIT = -1e9


def causal_mask(query_length: Any, key_length: Any, offset: Any = 0) -> Any:
    """Boolean [T, S] mask: query i, at absolute position `offset + i`, may attend key j iff j <= offset + i.

    With a cache, `offset` is the cache update index, so the same rule also hides the cache's unwritten slots.
    """
    query_positions = ops.expand_dims(ops.arange(query_length, dtype="int32") + offset, 1)
    key_positions = ops.expand_dims(ops.arange(key_length, dtype="int32"), 0)
    return ops.greater_equal(query_positions, key_positions)


def write_cache(cache: Any, update: Any, index: Any) -> Any:
    """cache[:, index : index + T] = update, for a cache [B, L, H, d_k] and an update [B, T, H, d_k].

    Written as a one-hot placement rather than `ops.slice_update`: on TensorFlow that op is
    `XlaDynamicUpdateSlice`, which forces XLA even outside `jit_compile` and which the stock TF Serving
    binary cannot run, while this is plain elementwise work (exact: it multiplies by 0 or 1 and adds 0)
    that costs one pass over the cache, as reading it in attention does anyway.
    """
    length, steps = ops.shape(cache)[1], ops.shape(update)[1]
    positions = ops.arange(length, dtype="int32")
    if isinstance(steps, int) and steps == 1:  # a decoding step: one select instead of the one-hot einsum
        return ops.where(ops.equal(positions, index)[None, :, None, None], update, cache)
    placement = ops.cast(ops.equal(positions[None, :], index + ops.arange(steps, dtype="int32")[:, None]), cache.dtype)
    kept = 1 - ops.sum(placement, axis=0)
    return cache * kept[None, :, None, None] + ops.einsum("tl,bthd->blhd", placement, update)


@keras.saving.register_keras_serializable(package="kerasllm")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention with an optional static-shape key/value cache.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W^O, head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)   (§3.2.2)
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V                                                      (Eq. 1)

    The layer is self-attention when called without `key_value`, cross-attention otherwise; `build` fixes which
    (cross-attention when `key_value_shape` is given), because with `fused_qkv` the two have different weights:
    one [D, 3D] kernel for self-attention, a [D, D] query and a [D_kv, 2D] key/value kernel for cross-attention.
    Each head has d_k = d_model // num_heads, as in the paper and keras-hub.

    Args:
        num_heads: int, the number of heads H; must divide the query's last dimension.
        fused_qkv: bool, compute the projections with one matmul (Q, K, V for self-attention, K, V for
            cross-attention) instead of three. Same maths, fewer and larger matmuls. Defaults to `True`.
        attention_dropout: float, dropout on the attention probabilities (the paper uses none). Defaults to `0.0`.
        use_bias: bool, whether the projections have biases. Defaults to `True`.
        kernel_initializer: initializer for the projection kernels. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer for the projection biases. Defaults to `"zeros"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        query: [B, T, D] tensor.
        key_value: [B, S, D_kv] tensor to attend over (cross-attention), or `None` for self-attention.
        attention_mask: boolean tensor broadcastable to [B, T, S], True where the query may attend the key,
            e.g. a padding mask as [B, 1, S].
        use_causal_mask: bool, also forbid attending to later positions (decoder self-attention).
        cache: optional `(key_cache, value_cache)`, each [B, max_length, H, d_k]. The new keys/values are written
            at `cache_update_index` and attention runs over the whole cache; the layer then returns
            `(output, new_cache)`. Use with `use_causal_mask=True`, which hides the slots not yet written.
        cache_update_index: int or scalar int tensor, the position of `query[:, 0]` in the sequence.
        precomputed_key_value: optional `(key, value)`, each [B, S, H, d_k], from `project_key_value`; lets a
            decoder project the encoder memory once per source instead of once per decoding step.
        return_attention_scores: bool, also return the attention probabilities [B, H, T, S] (Eq. 1 written
            out instead of `keras.ops.dot_product_attention`; meant for plotting).
        training: bool, whether attention dropout is active.

    Example:

    ```python
    attention = kerasllm.layers.MultiHeadAttention(num_heads=4)
    x = np.random.uniform(size=(2, 10, 64)).astype("float32")
    padding_mask = np.ones((2, 1, 10), dtype=bool)
    y = attention(x, attention_mask=padding_mask, use_causal_mask=True)  # [2, 10, 64]
    ```
    """

    def __init__(
        self,
        num_heads: int,
        fused_qkv: bool = True,
        attention_dropout: float = 0.0,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.fused_qkv = fused_qkv
        self.attention_dropout = attention_dropout
        self.use_bias = use_bias
        # Stored serialized so that every projection deserializes its own initializer instance.
        self.kernel_initializer = keras.initializers.serialize(keras.initializers.get(kernel_initializer))
        self.bias_initializer = keras.initializers.serialize(keras.initializers.get(bias_initializer))
        self.supports_masking = True  # the output keeps the query's mask

    def _dense(self, units: int, name: str) -> Dense:
        return Dense(
            units,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.get(self.kernel_initializer),
            bias_initializer=keras.initializers.get(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape: tuple, key_value_shape: tuple | None = None) -> None:
        model_dim = query_shape[-1]
        if model_dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide the query dimension {model_dim}.")
        self.model_dim = model_dim
        self.head_dim = model_dim // self.num_heads
        self.is_cross_attention = key_value_shape is not None
        key_value_shape = query_shape if key_value_shape is None else key_value_shape
        if self.fused_qkv and not self.is_cross_attention:
            self.query_key_value_dense = self._dense(3 * model_dim, "query_key_value")
            self.query_key_value_dense.build(query_shape)
        else:
            self.query_dense = self._dense(model_dim, "query")
            self.query_dense.build(query_shape)
            if self.fused_qkv:
                self.key_value_dense = self._dense(2 * model_dim, "key_value")
                self.key_value_dense.build(key_value_shape)
            else:
                self.key_dense = self._dense(model_dim, "key")
                self.key_dense.build(key_value_shape)
                self.value_dense = self._dense(model_dim, "value")
                self.value_dense.build(key_value_shape)
        self.output_dense = self._dense(model_dim, "attention_output")
        self.output_dense.build(tuple(query_shape[:-1]) + (model_dim,))
        self.dropout = keras.layers.Dropout(self.attention_dropout, dtype=self.dtype_policy, name="attention_dropout")
        self.built = True

    def _split_heads(self, x: Any) -> Any:
        return ops.reshape(x, leading_shape(x) + (self.num_heads, self.head_dim))

    def project_key_value(self, key_value: Any) -> tuple[Any, Any]:
        """Project a [B, S, D_kv] source into (K W^K, V W^V), each [B, S, H, d_k]; cross-attention layers only."""
        if not self.is_cross_attention and self.fused_qkv:
            raise ValueError("project_key_value is for cross-attention layers (built with a key_value_shape).")
        if self.fused_qkv:
            key, value = ops.split(self.key_value_dense(key_value), 2, axis=-1)
        else:
            key, value = self.key_dense(key_value), self.value_dense(key_value)
        return self._split_heads(key), self._split_heads(value)

    def _project(self, query: Any, key_value: Any) -> tuple[Any, Any, Any]:
        if self.fused_qkv and not self.is_cross_attention:
            query, key, value = ops.split(self.query_key_value_dense(query), 3, axis=-1)
            return self._split_heads(query), self._split_heads(key), self._split_heads(value)
        key, value = self.project_key_value(query if key_value is None else key_value)
        return self._split_heads(self.query_dense(query)), key, value

    def call(
        self,
        query: Any,
        key_value: Any = None,
        attention_mask: Any = None,
        use_causal_mask: bool = False,
        cache: tuple[Any, Any] | None = None,
        cache_update_index: Any = 0,
        precomputed_key_value: tuple[Any, Any] | None = None,
        return_attention_scores: bool = False,
        training: bool | None = None,
    ) -> Any:
        if precomputed_key_value is None:
            query, key, value = self._project(query, key_value)
        else:
            query, (key, value) = self._split_heads(self.query_dense(query)), precomputed_key_value
        if cache is not None:
            # Static shapes for a compiled decoding loop: write this step's K/V into the preallocated cache.
            key = write_cache(cache[0], ops.cast(key, cache[0].dtype), cache_update_index)
            value = write_cache(cache[1], ops.cast(value, cache[1].dtype), cache_update_index)
            cache = (key, value)

        mask = None if attention_mask is None else ops.cast(attention_mask, "bool")
        if use_causal_mask:
            causal = causal_mask(ops.shape(query)[1], ops.shape(key)[1], cache_update_index if cache is not None else 0)
            mask = causal if mask is None else ops.logical_and(mask, causal)
        # The mask as an additive float32 bias [B or 1, 1, T, S], shared by all heads: one add on the logits,
        # where a boolean mask makes dot_product_attention build and select over a full [B, H, T, S] mask.
        bias = None if mask is None else ops.where(ops.expand_dims(mask, -3), 0.0, MASKED_LOGIT)

        # The softmax must run in float32 under mixed precision (float16 overflows, bfloat16 is too coarse);
        # casting here makes that hold on every backend, whatever dot_product_attention does internally.
        query, key, value = (ops.cast(x, "float32") for x in (query, key, value))
        # A decoding step (one query against a cache or precomputed memory) takes the written-out path too:
        # Keras's TensorFlow dot_product_attention contracts the probabilities with the values as
        # einsum("BNTS,BSNH->BTNH"), which TF's CPU kernel runs several times slower than the transposes and
        # batch matmul below once the batch is above 1 (bench/README.md, "A decoding step's attention"). A single
        # query gains nothing from a fused kernel.
        decoding_step = cache is not None or precomputed_key_value is not None
        if return_attention_scores or (training and self.attention_dropout > 0) or decoding_step:
            output, scores = self._attention_with_scores(query, key, value, bias, training)
        else:
            output, scores = ops.dot_product_attention(query, key, value, bias=bias), None

        output = ops.cast(output, self.compute_dtype)
        output = self.output_dense(ops.reshape(output, leading_shape(output, 2) + (self.model_dim,)))
        results = (output,) + ((cache,) if cache is not None else ()) + ((scores,) if return_attention_scores else ())
        return results[0] if len(results) == 1 else results

    def _attention_with_scores(self, query: Any, key: Any, value: Any, bias: Any, training: bool | None) -> tuple:
        """Eq. 1 written out, heads first: softmax(Q K^T / sqrt(d_k) + bias) V, returning the output [B, T, H, d_k]
        and the probabilities [B, H, T, S] (needed for plotting and attention dropout)."""
        query, key, value = (ops.transpose(x, (0, 2, 1, 3)) for x in (query, key, value))  # [B, H, T or S, d_k]
        logits = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / math.sqrt(self.head_dim)
        if bias is not None:
            logits = logits + bias
        scores = ops.softmax(logits, axis=-1)
        output = ops.matmul(self.dropout(scores, training=training), value)
        return ops.transpose(output, (0, 2, 1, 3)), scores

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "fused_qkv": self.fused_qkv,
                "attention_dropout": self.attention_dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer,
            }
        )
        return config
