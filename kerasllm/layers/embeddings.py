"""Token embeddings plus positions, the input of both Transformer stacks (Vaswani et al., 2017, §3.4-3.5)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from kerasllm.layers.positions import LearnedPositionEmbedding, SinusoidalPositionEncoding


def tied_logits(embedding: keras.layers.ReversibleEmbedding, hidden: Any) -> Any:
    """Float32 logits `hidden @ E^T` from a tied embedding E [V, D], as `embedding(hidden, reverse=True)`.

    For one decoding step (`hidden` [B, D]) this computes (E hidden^T)^T, which reads E in its stored layout:
    `hidden @ E^T` becomes a MatMul with a transposed right operand, which TF's CPU kernel runs very slowly at
    a few rows (figures in bench/README.md). Other ranks use the layer's own path.
    """
    if len(hidden.shape) != 2:
        return embedding(hidden, reverse=True)
    # Rounded through the compute dtype first, as the layer's autocast reads it under a mixed policy.
    kernel = ops.cast(ops.cast(embedding.embeddings, embedding.compute_dtype), "float32")
    return ops.transpose(ops.matmul(kernel, ops.transpose(ops.cast(hidden, "float32"))))


@keras.saving.register_keras_serializable(package="kerasllm")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding scaled by sqrt(d_model), plus a sinusoidal or learned position embedding.

    The token embedding is a `keras.layers.ReversibleEmbedding`, so the same matrix can also compute output
    logits (`layer.token_embedding(hidden, reverse=True)`, in float32), which is the paper's weight tying
    between the embeddings and the pre-softmax projection (§3.4).

    Args:
        vocabulary_size: int, the number of token ids.
        sequence_length: int, the longest sequence (only bounds the learned position table).
        embedding_dim: int, d_model.
        position: `"sinusoidal"` (the paper's) or `"learned"`. Defaults to `"sinusoidal"`.
        scale_embeddings: bool, multiply the token embedding by sqrt(d_model) as in §3.4. Defaults to `True`.
        mask_zero: bool, token id 0 is padding: the output carries a Keras mask `tokens != 0`. Defaults to `True`.
        embeddings_initializer: initializer of the token embedding; `None` draws from N(0, d_model^-0.5) so
            the scaled embedding has unit variance, and tied logits start small.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: [B, T] int token ids.
        start_index: int or scalar int tensor, the position of `inputs[:, 0]` (cached decoding). Defaults to `0`.

    Example:

    ```python
    embedding = kerasllm.layers.TokenAndPositionEmbedding(
        vocabulary_size=1000, sequence_length=64, embedding_dim=32)
    x = embedding(np.array([[5, 6, 7, 0]]))  # [1, 4, 32], mask [[True, True, True, False]]
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        embedding_dim: int,
        position: str = "sinusoidal",
        scale_embeddings: bool = True,
        mask_zero: bool = True,
        embeddings_initializer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if position not in ("sinusoidal", "learned"):
            raise ValueError(f'position must be "sinusoidal" or "learned", got {position!r}.')
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.position = position
        self.scale_embeddings = scale_embeddings
        self.mask_zero = mask_zero
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.RandomNormal(stddev=embedding_dim**-0.5)
        self.embeddings_initializer = keras.initializers.serialize(keras.initializers.get(embeddings_initializer))
        self.supports_masking = mask_zero
        self.token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size,
            embedding_dim,
            tie_weights=True,
            mask_zero=mask_zero,
            reverse_dtype="float32",
            embeddings_initializer=keras.initializers.get(self.embeddings_initializer),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        if position == "sinusoidal":
            self.position_embedding = SinusoidalPositionEncoding(dtype=self.dtype_policy, name="position_embedding")
        else:
            self.position_embedding = LearnedPositionEmbedding(
                sequence_length, dtype=self.dtype_policy, name="position_embedding"
            )

    def build(self, inputs_shape: tuple) -> None:
        self.token_embedding.build(inputs_shape)
        self.position_embedding.build(tuple(inputs_shape) + (self.embedding_dim,))
        self.built = True

    def call(self, inputs: Any, start_index: Any = 0) -> Any:
        embeddings = self.token_embedding(inputs)
        if self.scale_embeddings:
            embeddings = embeddings * ops.cast(math.sqrt(self.embedding_dim), embeddings.dtype)
        return embeddings + self.position_embedding(embeddings, start_index=start_index)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return ops.not_equal(inputs, 0) if self.mask_zero else None

    def compute_output_shape(self, inputs_shape: tuple) -> tuple:
        return tuple(inputs_shape) + (self.embedding_dim,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "position": self.position,
                "scale_embeddings": self.scale_embeddings,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": self.embeddings_initializer,
            }
        )
        return config
