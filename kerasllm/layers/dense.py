"""A Dense layer that runs inputs of any rank as one 2-D matmul, and the reshape target it uses."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def leading_shape(x: Any, num_trailing_axes: int = 1) -> tuple:
    """x's shape without its last `num_trailing_axes` axes, as a reshape target.

    The first axis becomes -1 when the others are known and non-zero, so that reshaping a decoding step's
    [B, 1, ...] tensor, whose batch B is only known at run time, needs no run-time shape arithmetic
    (Shape, StridedSlice and Pack ops in a TensorFlow graph). Otherwise the shape is read as usual; an
    axis of size 0 keeps its explicit size, since -1 cannot be inferred from an empty tensor.
    """
    rank = len(x.shape) - num_trailing_axes
    static = tuple(x.shape[:rank])
    if rank > 1 and all(isinstance(size, int) and size > 0 for size in static[1:]):
        return (-1,) + static[1:]
    return tuple(ops.shape(x)[:rank])


@keras.saving.register_keras_serializable(package="kerasllm")
class Dense(keras.layers.Dense):
    """`keras.layers.Dense` whose input of rank > 2 is flattened to [N, D], multiplied, and reshaped back.

    Same weights, config and outputs as `keras.layers.Dense`. Why not that layer itself: on TensorFlow,
    Keras multiplies a [B, T, D] input by the kernel with `tf.tensordot`, which wraps the MatMul in about
    ten run-time shape ops when B is unknown, as in a SavedModel. At a decoding step (batch 1 or one beam)
    those ops cost more than the MatMul (bench/README.md), and a Transformer decoder step runs six projections
    per layer.

    Args:
        units, activation, use_bias, ...: as `keras.layers.Dense`.

    Example:

    ```python
    dense = kerasllm.layers.Dense(64)
    y = dense(np.random.uniform(size=(2, 10, 32)))  # [2, 10, 64]
    ```
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if len(inputs.shape) <= 2:
            return super().call(inputs, training=training)
        outputs = super().call(ops.reshape(inputs, (-1, inputs.shape[-1])), training=training)
        return ops.reshape(outputs, leading_shape(inputs) + (self.units,))
