"""A decoder-only language model, GPT style (Radford et al., 2018; 2019): predict every next token.

The whole model, top to bottom:

1. token ids [B, T] → token embedding + learned position embedding (`TokenAndPositionEmbedding`), dropout;
2. N pre-norm `TransformerDecoderLayer`s without a memory: causal self-attention (position t sees 0 ... t) and a
   feed-forward network, each as x + Dropout(Sublayer(LayerNorm(x)));
3. a final LayerNorm;
4. logits = hidden @ E^T, with E the token embedding matrix (tied weights), in float32 for the softmax and loss.

Steps 1 to 3 are a `TransformerDecoder(cross_attention=False, normalize_first=True)`. Token id 0 is padding: the
logits carry the Keras mask `token_ids != 0`, so Keras losses and metrics skip it.

Generation goes through the causal decoding interface, every tensor batch-major:

    cache = model.init_cache(batch_size, max_length)
    logits, cache = model.call_with_cache(token_ids, cache, cache_update_index)   # [B, T] in, [B, T, V] out

first with the prompt (T > 1, `cache_update_index` 0), then one token per step (T = 1, index = its position).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.layers import tied_logits
from kerasllm.models import TransformerDecoder


@keras.saving.register_keras_serializable(package="kerasllm")
class CausalLM(keras.Model):
    """A GPT: token ids [B, T] → next-token logits [B, T, vocabulary_size] float32.

    Args:
        vocabulary_size: int, the number of token ids.
        num_layers: int, decoder layers. Defaults to `4`.
        hidden_dim: int, the model width. Defaults to `256`.
        num_heads: int, attention heads (each hidden_dim // num_heads wide). Defaults to `4`.
        intermediate_dim: int, the feed-forward inner size. Defaults to `1024`.
        dropout: float, on the embedding and every sub-layer output. Defaults to `0.1`.
        max_length: int, the longest sequence (the position table's size, and the largest cache). Defaults to
            `256`.
        activation: feed-forward activation. Defaults to `"gelu"`, as in GPT.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        dtype: dtype policy of the layers, e.g. `"mixed_bfloat16"`; `None` for the global policy. The logits
            are float32 whatever it is.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    model = kerasllm.tasks.CausalLM(vocabulary_size=100, num_layers=2, hidden_dim=32, num_heads=4,
                                    intermediate_dim=64, max_length=16)
    prompt = np.array([[5, 6, 7]], dtype="int32")
    logits = model(prompt)  # [1, 3, 100]: logits[:, t] scores the token after position t
    cache = model.init_cache(batch_size=1, max_length=16)
    logits, cache = model.call_with_cache(prompt, cache, 0)  # the same logits, and the prompt's keys/values
    next_token = np.argmax(logits[:, -1], axis=-1).astype("int32")[:, None]
    logits, cache = model.call_with_cache(next_token, cache, 3)  # [1, 1, 100], for position 4
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int = 4,
        hidden_dim: int = 256,
        num_heads: int = 4,
        intermediate_dim: int = 1024,
        dropout: float = 0.1,
        max_length: int = 256,
        activation: str = "gelu",
        layer_norm_epsilon: float = 1e-5,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        # === Layers ===
        self.backbone = TransformerDecoder(
            vocabulary_size,
            num_layers,
            hidden_dim,
            num_heads,
            intermediate_dim,
            dropout=dropout,
            max_length=max_length,
            position="learned",
            normalize_first=True,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            cross_attention=False,
            dtype=dtype,
            name="backbone",
        )

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        logits = tied_logits(self.backbone.token_embedding, self.backbone(token_ids))
        super().__init__(inputs=token_ids, outputs=logits, dtype=dtype, **kwargs)
        if dtype is not None:  # keras.Model's functional constructor ignores dtype: keep it for the config
            self.dtype_policy = dtype

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_length = max_length
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return ops.not_equal(inputs, 0)

    def init_cache(self, batch_size: Any, max_length: int) -> dict[str, Any]:
        """Zeroed key/value caches for `max_length` positions (at most the model's `max_length`).

        Returns:
            A dict with `"key_{i}"` and `"value_{i}"` for each layer i, each
            [batch_size, max_length, num_heads, hidden_dim // num_heads] in the layers' compute dtype.
        """
        return self.backbone.init_cache(batch_size, max_length)

    def call_with_cache(
        self, token_ids: Any, cache: dict[str, Any], cache_update_index: Any, padding_mask: Any = None
    ) -> tuple[Any, dict]:
        """The logits of positions `cache_update_index ... cache_update_index + T - 1`, reading and writing the cache.

        Args:
            token_ids: [B, T] int32: a prompt (T > 1) or the last generated token (T = 1).
            cache: from `init_cache` or a previous call.
            cache_update_index: int or scalar int32 tensor, the position of `token_ids[:, 0]`.
            padding_mask: [B, T] bool, ignored; accepted so that a decoder calls every causal model alike (a
                recurrent model's state must skip the steps where it is False). Here every position is written:
                a decoder rewrites a slot it should not have filled before any query attends it.

        Returns:
            `(logits [B, T, vocabulary_size] float32, new_cache)`; the logits equal the full pass's at those
            positions, and `new_cache` has the structure, shapes and dtypes of `cache`.
        """
        hidden, cache = self.backbone.call_with_cache(token_ids, cache, cache_update_index)
        return tied_logits(self.backbone.token_embedding, hidden), cache

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
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config: dict) -> CausalLM:
        return cls(**config)
