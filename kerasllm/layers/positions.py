"""Position information for the Transformer (Vaswani et al., 2017, §3.5): the paper's sinusoids, or learned."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasllm")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """The paper's fixed sinusoidal position encoding, sin and cos interleaved as in §3.5.

    PE(pos, 2i) = sin(pos / 10000^(2i / d)),  PE(pos, 2i + 1) = cos(pos / 10000^(2i / d)).

    It has no weights, so it works for any length; `start_index` gives the position of the first input, which
    cached decoding needs (it feeds one token at a time).

    Args:
        max_wavelength: float, the 10000 in the formula. Defaults to `10000`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: [B, T, d] embeddings; only their shape is used.
        start_index: int or scalar int tensor, the position of `inputs[:, 0]`. Defaults to `0`.

    Returns:
        The [B, T, d] position encoding (the caller adds it to the embeddings).

    Example:

    ```python
    embeddings = np.zeros((2, 10, 64), dtype="float32")
    positions = kerasllm.layers.SinusoidalPositionEncoding()(embeddings)  # [2, 10, 64]
    ```
    """

    def __init__(self, max_wavelength: float = 10000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def call(self, inputs: Any, start_index: Any = 0) -> Any:
        shape = ops.shape(inputs)
        length, dim = shape[-2], inputs.shape[-1]
        positions = ops.cast(ops.arange(length, dtype="int32") + start_index, "float32")
        # Feature k uses frequency index i = k // 2; even k take the sine, odd k the cosine (interleaved).
        features = ops.arange(dim, dtype="int32")
        exponents = ops.cast(2 * (features // 2), "float32") / dim
        angles = ops.expand_dims(positions, 1) / ops.power(float(self.max_wavelength), exponents)
        encoding = ops.where(features % 2 == 0, ops.sin(angles), ops.cos(angles))
        return ops.broadcast_to(ops.cast(encoding, self.compute_dtype), shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength})
        return config


@keras.saving.register_keras_serializable(package="kerasllm")
class LearnedPositionEmbedding(keras.layers.Layer):
    """A learned table of one vector per position, up to `sequence_length` positions.

    Args:
        sequence_length: int, the longest sequence the table covers.
        initializer: initializer for the table. Defaults to `"glorot_uniform"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: [B, T, d] embeddings; only their shape is used.
        start_index: int or scalar int tensor, the position of `inputs[:, 0]`. Defaults to `0`.

    Returns:
        The [B, T, d] position embeddings of positions `start_index ... start_index + T - 1`.

    Example:

    ```python
    embeddings = np.zeros((2, 10, 64), dtype="float32")
    positions = kerasllm.layers.LearnedPositionEmbedding(sequence_length=128)(embeddings)  # [2, 10, 64]
    ```
    """

    def __init__(self, sequence_length: int, initializer: Any = "glorot_uniform", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.serialize(keras.initializers.get(initializer))

    def build(self, inputs_shape: tuple) -> None:
        self.position_embeddings = self.add_weight(
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=keras.initializers.get(self.initializer),
            name="embeddings",
        )
        self.built = True

    def call(self, inputs: Any, start_index: Any = 0) -> Any:
        shape = ops.shape(inputs)
        # The variable's value, not the variable: JAX's slice no longer unwraps a Keras variable itself.
        table = ops.convert_to_tensor(self.position_embeddings)
        table = ops.slice(table, (start_index, 0), (shape[-2], inputs.shape[-1]))
        return ops.broadcast_to(ops.cast(table, self.compute_dtype), shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length, "initializer": self.initializer})
        return config
