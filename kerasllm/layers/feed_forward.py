"""The Transformer's position-wise feed-forward network (Vaswani et al., 2017, §3.3)."""

from __future__ import annotations

from typing import Any

import keras

from kerasllm.layers.dense import Dense


@keras.saving.register_keras_serializable(package="kerasllm")
class FeedForward(keras.layers.Layer):
    """FFN(x) = act(x W_1 + b_1) W_2 + b_2, applied to every position alike (Eq. 2, with ReLU in the paper).

    Args:
        intermediate_dim: int, the inner size d_ff.
        activation: activation of the inner layer, e.g. `"relu"` (paper) or `"gelu"`. Defaults to `"relu"`.
        kernel_initializer: initializer for both kernels. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer for both biases. Defaults to `"zeros"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:

    ```python
    ffn = kerasllm.layers.FeedForward(intermediate_dim=256)
    y = ffn(np.random.uniform(size=(2, 10, 64)))  # [2, 10, 64]
    ```
    """

    def __init__(
        self,
        intermediate_dim: int,
        activation: Any = "relu",
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.activation = keras.activations.serialize(keras.activations.get(activation))
        self.kernel_initializer = keras.initializers.serialize(keras.initializers.get(kernel_initializer))
        self.bias_initializer = keras.initializers.serialize(keras.initializers.get(bias_initializer))
        self.supports_masking = True

    def build(self, inputs_shape: tuple) -> None:
        self.intermediate_dense = Dense(
            self.intermediate_dim,
            activation=keras.activations.get(self.activation),
            kernel_initializer=keras.initializers.get(self.kernel_initializer),
            bias_initializer=keras.initializers.get(self.bias_initializer),
            dtype=self.dtype_policy,
            name="intermediate_dense",
        )
        self.intermediate_dense.build(inputs_shape)
        self.output_dense = Dense(
            inputs_shape[-1],
            kernel_initializer=keras.initializers.get(self.kernel_initializer),
            bias_initializer=keras.initializers.get(self.bias_initializer),
            dtype=self.dtype_policy,
            name="output_dense",
        )
        self.output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def call(self, inputs: Any) -> Any:
        return self.output_dense(self.intermediate_dense(inputs))

    def compute_output_shape(self, inputs_shape: tuple) -> tuple:
        return inputs_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "activation": self.activation,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer,
            }
        )
        return config
