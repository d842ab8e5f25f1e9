"""A serving copy of a tied seq2seq model: the same logits from a separate, pre-transposed output kernel."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def untied_copy(model: keras.Model, embedding: keras.layers.Embedding, **config: Any) -> keras.Model:
    """`model` rebuilt untied (plus `config` overrides), with its weights and an output projection E^T, zero bias;
    a model that is not tied is returned as it is.

    For serving. A tied decoding step multiplies h by E [V, D] read across its rows, which TF's CPU MatMul
    runs much more slowly than h W with W stored [D, V] (figures in bench/README.md): the copy answers sooner
    for one more V x D matrix.

    Args:
        model: a model whose config takes `tie_output_embedding` and whose untied form has a Dense
            `output_projection` [D, V]; every other layer keeps its name.
        embedding: the tied embedding layer (E [V, D]).
        **config: further config changes that make the untied model compute the same function.
    """
    if not model.tie_output_embedding:
        return model
    copy = model.__class__.from_config({**model.get_config(), "tie_output_embedding": False, **config})
    for layer in copy.layers:
        if layer.weights and layer is not copy.output_projection:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    # Rounded through the compute dtype, as tied_logits reads E, so that a mixed-precision copy is exact too.
    kernel = ops.cast(ops.cast(embedding.embeddings, embedding.compute_dtype), "float32")
    copy.output_projection.set_weights([ops.transpose(kernel), ops.zeros((kernel.shape[0],))])
    return copy
