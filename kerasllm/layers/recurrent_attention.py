"""Attention for recurrent decoders: Luong et al. (2015) "dot"/"general" and Bahdanau et al. (2015) "additive".

At each decoding step a query vector scores every encoder position, a masked softmax turns the scores into
alignment weights, and the context is the weighted sum of the encoder outputs (Luong Eq. 7, Bahdanau Eq. 5-6).
The memory-side half of each score is a per-source projection, so `project_keys` computes it once per source
and the decoder reuses it at every step.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.layers.attention import MASKED_LOGIT
from kerasllm.layers.dense import Dense


class _RecurrentAttention(keras.layers.Layer):
    """Masked softmax over scores and the weighted sum of the memory; subclasses define the score."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The query steps' Keras mask (the decoder's padding) passes through to the context.
        self.supports_masking = True

    def project_keys(self, memory: Any) -> Any:
        """The memory-side term of the score, [B, S, ...], computed once per source."""
        raise NotImplementedError

    def score(self, query: Any, keys: Any) -> Any:
        """Scores [B, T, S] of [B, T, D_q] queries against the projected keys."""
        raise NotImplementedError

    def call(self, query: Any, keys: Any, memory: Any, memory_padding_mask: Any = None) -> tuple[Any, Any]:
        """Returns (context [B, D_memory], alignment weights [B, S] in float32) for a [B, D_q] query, or
        ([B, T, D_memory], [B, T, S]) for [B, T, D_q] queries: T steps' attention in one batched matmul."""
        single_step = len(query.shape) == 2
        if single_step:
            query = ops.expand_dims(query, 1)
        # float32 softmax whatever the compute dtype; a finite fill keeps an all-padding source NaN-free.
        scores = ops.cast(self.score(query, keys), "float32")
        if memory_padding_mask is not None:
            scores = ops.where(ops.expand_dims(memory_padding_mask, 1), scores, MASKED_LOGIT)
        weights = ops.softmax(scores, axis=-1)
        context = ops.einsum("bts,bsd->btd", ops.cast(weights, memory.dtype), memory)
        return (context[:, 0], weights[:, 0]) if single_step else (context, weights)


@keras.saving.register_keras_serializable(package="kerasllm")
class LuongAttention(_RecurrentAttention):
    """Luong et al. (2015) multiplicative attention: score(h_t, h_s) = h_t . h_s ("dot") or h_t . W_a h_s
    ("general") (Eq. 8), scored with the decoder's current hidden state h_t.

    Args:
        score_mode: `"dot"` (needs the decoder and memory sizes to match) or `"general"`. Defaults to `"dot"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        query: [B, D_q] decoder state, or [B, T, D_q] states of T steps; keys: `project_keys(memory)`;
            memory: [B, S, D_m] encoder outputs;
        memory_padding_mask: boolean [B, S], True for real source tokens.

    Example:

    ```python
    attention = kerasllm.layers.LuongAttention("general")
    memory = np.random.uniform(size=(2, 7, 32)).astype("float32")
    query = np.random.uniform(size=(2, 16)).astype("float32")
    attention.build(query.shape, memory.shape)
    context, weights = attention(query, attention.project_keys(memory), memory)  # [2, 32], [2, 7]
    ```
    """

    def __init__(self, score_mode: str = "dot", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if score_mode not in ("dot", "general"):
            raise ValueError(f'score_mode must be "dot" or "general", got {score_mode!r}.')
        self.score_mode = score_mode

    def build(self, query_shape: tuple, memory_shape: tuple) -> None:
        if self.score_mode == "dot" and query_shape[-1] != memory_shape[-1]:
            raise ValueError(
                f'Luong "dot" attention needs equal query and memory sizes, got {query_shape[-1]} and '
                f'{memory_shape[-1]}; use "general" (e.g. with a bidirectional encoder).'
            )
        if self.score_mode == "general":
            self.key_dense = Dense(query_shape[-1], use_bias=False, dtype=self.dtype_policy, name="W_a")
            self.key_dense.build(memory_shape)
        self.built = True

    def project_keys(self, memory: Any) -> Any:
        return memory if self.score_mode == "dot" else self.key_dense(memory)

    def score(self, query: Any, keys: Any) -> Any:
        return ops.einsum("btd,bsd->bts", query, keys)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"score_mode": self.score_mode})
        return config


@keras.saving.register_keras_serializable(package="kerasllm")
class BahdanauAttention(_RecurrentAttention):
    """Bahdanau et al. (2015) additive attention: e_ij = v_a . tanh(W_a s_{i-1} + U_a h_j) (Appendix A.1.2),
    scored with the decoder's *previous* state s_{i-1}, so the context can feed the current recurrent step.

    Args:
        units: int, the size of the hidden scoring layer.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        query: [B, D_q] previous decoder state; keys: `project_keys(memory)` = U_a h_j; memory: [B, S, D_m];
        memory_padding_mask: boolean [B, S], True for real source tokens.

    Example:

    ```python
    attention = kerasllm.layers.BahdanauAttention(units=16)
    memory = np.random.uniform(size=(2, 7, 32)).astype("float32")
    query = np.random.uniform(size=(2, 16)).astype("float32")
    attention.build(query.shape, memory.shape)
    context, weights = attention(query, attention.project_keys(memory), memory)  # [2, 32], [2, 7]
    ```
    """

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, query_shape: tuple, memory_shape: tuple) -> None:
        self.query_dense = Dense(self.units, use_bias=False, dtype=self.dtype_policy, name="W_a")
        self.query_dense.build(query_shape)
        self.key_dense = Dense(self.units, use_bias=False, dtype=self.dtype_policy, name="U_a")
        self.key_dense.build(memory_shape)
        self.score_dense = Dense(1, use_bias=False, dtype=self.dtype_policy, name="v_a")
        self.score_dense.build((None, None, self.units))
        self.built = True

    def project_keys(self, memory: Any) -> Any:
        return self.key_dense(memory)

    def score(self, query: Any, keys: Any) -> Any:
        hidden = ops.tanh(ops.expand_dims(self.query_dense(query), 2) + ops.expand_dims(keys, 1))  # [B, T, S, U]
        return ops.squeeze(self.score_dense(hidden), -1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"units": self.units})
        return config
