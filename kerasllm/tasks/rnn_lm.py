"""A recurrent language model (LSTM or GRU), the baseline of the GPT `CausalLM`: predict every next token.

The whole model, top to bottom:

1. token ids [B, T] → token embedding, dropout;
2. N stacked `keras.layers.LSTM` or `keras.layers.GRU` layers, each reading the previous one's outputs through
   dropout (on the connections between layers only, not inside the recurrence: Zaremba et al., 2014);
3. dropout, then logits [B, T, vocabulary_size] in float32 for the softmax and loss: a dense projection, or with
   `tie_embeddings` a linear map to `embedding_dim` followed by the embedding matrix transposed.

Token id 0 is padding: the recurrence is masked, so a padded step carries the state over, and the logits carry
the Keras mask `token_ids != 0`, so Keras losses and metrics skip it.

It implements the causal decoding interface of `CausalLM`, so `kerasllm.decoding.generate` drives either:

    cache = model.init_cache(batch_size, max_length)
    logits, cache = model.call_with_cache(token_ids, cache, cache_update_index, padding_mask)

The cache is the recurrent state, one fixed-size vector per layer (and per kind: hidden, LSTM cell) whatever the
length, so `max_length` and `cache_update_index` are accepted and unused. Unlike a key/value cache, a state has no
slot that a later step overwrites: a prefilled step cannot be taken back, so a right-padded prompt batch is
prefilled with `padding_mask` False from the shortest prompt's last token on, and those steps leave the state as
it was.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.layers import Dense, tied_logits
from kerasllm.layers.recurrent import RNN_CELLS

# The recurrent layers an RNNLM may stack, and the state kinds each carries, in Keras' state order.
STATE_KINDS = {"lstm": ("h", "c"), "gru": ("h",)}


@keras.saving.register_keras_serializable(package="kerasllm")
class RNNLM(keras.Model):
    """An LSTM or GRU language model: token ids [B, T] → next-token logits [B, T, vocabulary_size] float32.

    With `tie_embeddings`, a linear layer maps the top layer's output to `embedding_dim` and the logits are its
    product with the token embedding matrix (Press & Wolf, 2017; Inan et al., 2017), whatever `units` is: the
    output matmul shrinks from [units x vocabulary] to [embedding_dim x vocabulary], and the checkpoint's layout
    does not depend on whether `units` happens to equal `embedding_dim`.

    The model has no position table: `max_length` is `None`, and it reads sequences of any length.

    Args:
        vocabulary_size: int, the number of token ids.
        cell: `"lstm"` or `"gru"`. Defaults to `"lstm"`.
        num_layers: int, stacked recurrent layers. Defaults to `2`.
        embedding_dim: int, the token embedding width. Defaults to `256`.
        units: int, the state size of every recurrent layer. Defaults to `512`.
        dropout: float, on the embedding, between recurrent layers and on the top layer's output. Defaults to
            `0.1`.
        tie_embeddings: bool, compute the logits with the token embedding matrix transposed, after a linear map
            to `embedding_dim`. Defaults to `False`.
        dtype: dtype policy of the layers, e.g. `"mixed_bfloat16"`; `None` for the global policy. The logits
            are float32 whatever it is.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    model = kerasllm.tasks.RNNLM(vocabulary_size=100, cell="gru", embedding_dim=16, units=32)
    prompt = np.array([[5, 6, 7]], dtype="int32")
    logits = model(prompt)  # [1, 3, 100]: logits[:, t] scores the token after position t
    cache = model.init_cache(batch_size=1, max_length=16)  # {"h_0": [1, 32], "h_1": [1, 32]} zeros
    logits, cache = model.call_with_cache(prompt, cache, 0)  # the same logits, and the states after the prompt
    next_token = np.argmax(logits[:, -1], axis=-1).astype("int32")[:, None]
    logits, cache = model.call_with_cache(next_token, cache, 3)  # [1, 1, 100], for position 4
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        cell: str = "lstm",
        num_layers: int = 2,
        embedding_dim: int = 256,
        units: int = 512,
        dropout: float = 0.1,
        tie_embeddings: bool = False,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if cell not in STATE_KINDS:
            raise ValueError(f"cell must be one of {sorted(STATE_KINDS)}, got {cell!r}.")

        # === Layers ===
        if tie_embeddings:  # reverse=True computes the tied logits, in float32 for the softmax and the loss
            self.token_embedding = keras.layers.ReversibleEmbedding(
                vocabulary_size, embedding_dim, reverse_dtype="float32", dtype=dtype, name="token_embedding"
            )
            # Its reverse call reads the recurrent outputs, which carry the padding mask; it returns none (the
            # logits' mask is the model's `compute_mask`), so accepting the mask only silences Keras' warning.
            self.token_embedding.supports_masking = True
        else:
            self.token_embedding = keras.layers.Embedding(
                vocabulary_size, embedding_dim, dtype=dtype, name="token_embedding"
            )
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embedding_dropout")
        self.rnn_layers = [
            RNN_CELLS[cell](units, return_sequences=True, return_state=True, dtype=dtype, name=f"{cell}_{index}")
            for index in range(num_layers)
        ]
        # One per recurrent layer, on its outputs: the next layer's input, or the top layer's before the logits.
        self.dropout_layers = [
            keras.layers.Dropout(dropout, dtype=dtype, name=f"{cell}_{index}_dropout") for index in range(num_layers)
        ]
        self.output_bottleneck = self.output_projection = None
        if tie_embeddings:
            self.output_bottleneck = Dense(embedding_dim, dtype=dtype, name="output_bottleneck")
        else:  # float32 under any policy: the logits feed the softmax and the loss
            self.output_projection = Dense(vocabulary_size, dtype="float32", name="output_projection")

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        outputs = self.embedding_dropout(self.token_embedding(token_ids))
        padding_mask = ops.not_equal(token_ids, 0)
        for rnn, dropout_layer in zip(self.rnn_layers, self.dropout_layers):
            outputs, *_ = rnn(outputs, mask=padding_mask)
            outputs = dropout_layer(outputs)
        logits = self._logits(outputs)
        super().__init__(inputs=token_ids, outputs=logits, dtype=dtype, **kwargs)
        if dtype is not None:  # keras.Model's functional constructor ignores dtype: keep it for the config
            self.dtype_policy = dtype

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.cell = cell
        self.num_layers = num_layers
        self.embedding_dim = embedding_dim
        self.units = units
        self.dropout = dropout
        self.tie_embeddings = tie_embeddings
        self.max_length = None  # no position table: decoders need not bound the positions

    def _logits(self, outputs: Any) -> Any:
        if self.output_projection is not None:
            return self.output_projection(outputs)
        return tied_logits(self.token_embedding, self.output_bottleneck(outputs))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return ops.not_equal(inputs, 0)

    def init_cache(self, batch_size: Any, max_length: Any = None) -> dict[str, Any]:
        """The zero states the full pass starts from.

        Args:
            batch_size: int or scalar int tensor.
            max_length: unused (a state does not grow with the sequence); accepted for the causal interface.

        Returns:
            A dict with `"h_{i}"`, and for an LSTM `"c_{i}"`, for each layer i, each [batch_size, units] in the
            layers' compute dtype.
        """
        dtype = self.rnn_layers[0].compute_dtype
        return {
            f"{kind}_{index}": ops.zeros((batch_size, self.units), dtype)
            for index in range(self.num_layers)
            for kind in STATE_KINDS[self.cell]
        }

    def call_with_cache(
        self, token_ids: Any, cache: dict[str, Any], cache_update_index: Any, padding_mask: Any = None
    ) -> tuple[Any, dict]:
        """The logits of the T tokens `token_ids` read on from the states in `cache`, and the states after them.

        Args:
            token_ids: [B, T] int32: a prompt (T > 1) or the last generated token (T = 1).
            cache: from `init_cache` or a previous call.
            cache_update_index: the position of `token_ids[:, 0]`; unused (the state is all the model needs),
                accepted for the causal interface.
            padding_mask: [B, T] bool; a step where it is False leaves the states unchanged (and its logits
                mean nothing). Defaults to `token_ids != 0`, the full pass's mask.

        Returns:
            `(logits [B, T, vocabulary_size] float32, new_cache)`; from the zero states, the logits equal the
            full pass's, and `new_cache` has the structure, shapes and dtypes of `cache`.
        """
        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, 0)
        steps = ops.shape(token_ids)[1]
        # An RNN cannot scan zero steps (a serving graph's empty batch has no column): give it one masked column,
        # which leaves the states as they are, and drop its logits.
        may_be_empty = not isinstance(steps, int) or steps == 0
        if may_be_empty:
            extra = ops.maximum(0, 1 - steps)
            token_ids = ops.pad(token_ids, [[0, 0], [0, extra]])
            padding_mask = ops.pad(ops.cast(padding_mask, "int32"), [[0, 0], [0, extra]]) > 0
        kinds = STATE_KINDS[self.cell]
        outputs = self.token_embedding(token_ids)
        new_cache = {}
        for index, rnn in enumerate(self.rnn_layers):
            initial_state = [cache[f"{kind}_{index}"] for kind in kinds]
            outputs, *states = rnn(outputs, initial_state=initial_state, mask=padding_mask)
            new_cache.update({f"{kind}_{index}": state for kind, state in zip(kinds, states)})
        logits = self._logits(outputs)
        return (logits[:, :steps] if may_be_empty else logits), new_cache

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "cell": self.cell,
            "num_layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
        }

    @classmethod
    def from_config(cls, config: dict) -> RNNLM:
        return cls(**config)
