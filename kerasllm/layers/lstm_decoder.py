"""The recurrent decoder of the LSTM baseline: stacked LSTM cells with optional Luong or Bahdanau attention.

One step function, `LSTMDecoderCell.step`, serves training and decoding: `LSTMDecoder` runs it over the target
sequence as a Keras RNN cell (teacher forcing), and the model's `decode_step` calls it once per generated token,
with the LSTM states as the cache. Using the same function for both is what makes cached decoding reproduce the
training-time forward pass exactly.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.layers.dense import Dense
from kerasllm.layers.recurrent_attention import BahdanauAttention, LuongAttention

ATTENTION_TYPES = (None, "luong_dot", "luong_general", "bahdanau")


@keras.saving.register_keras_serializable(package="kerasllm")
class LSTMDecoderCell(keras.layers.Layer):
    """One step of the stacked LSTM decoder; with attention the output is h~_t = tanh(W_c [c_t; h_t]).

    - `attention=None`: the top LSTM state h_t is the output (Sutskever et al., 2014).
    - `"luong_dot"` / `"luong_general"`: the context c_t is scored with the current top state h_t, after the LSTM
      step (Luong et al., 2015, §3.1, without input feeding).
    - `"bahdanau"`: c_t is scored with the previous top state s_{t-1} and fed into the LSTM with the input
      embedding (Bahdanau et al., 2015, §3.1); the output uses the same W_c combination.

    As a Keras RNN cell it runs `recurrent_step` with states `[hidden, cell]`, or with Bahdanau attention the
    whole `step` with states `[hidden, cell, memory, memory_keys, memory_padding_mask]`: Keras 3 cells take no
    constants, so the encoder memory rides along as states that every step returns unchanged (TensorFlow's
    while-loop gradient treats such loop invariants as captures, not per-step values). Luong attention needs no
    memory in the scan: `LSTMDecoder` applies `luong_output` to all steps after it.

    Args:
        units: int, the LSTM size (all layers).
        num_layers: int, the number of stacked LSTM layers. Defaults to `1`.
        attention: one of `None`, `"luong_dot"`, `"luong_general"`, `"bahdanau"`. Defaults to `None`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:

    ```python
    cell = kerasllm.layers.LSTMDecoderCell(units=16, attention="bahdanau")
    cell.build((None, 8), memory_shape=(None, 7, 32))
    memory = np.random.uniform(size=(2, 7, 32)).astype("float32")
    state = (np.zeros((2, 1, 16), "float32"), np.zeros((2, 1, 16), "float32"))
    output, state = cell.step(np.ones((2, 8), "float32"), state, memory, cell.attention.project_keys(memory))
    ```
    """

    def __init__(self, units: int, num_layers: int = 1, attention: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if attention not in ATTENTION_TYPES:
            raise ValueError(f"attention must be one of {ATTENTION_TYPES}, got {attention!r}.")
        self.units = units
        self.num_layers = num_layers
        self.attention_type = attention
        # The recurrent states; the memory states have no fixed size, and callers always pass initial states.
        self.state_size = [(num_layers, units), (num_layers, units)]

    def build(self, inputs_shape: tuple, memory_shape: tuple | None = None) -> None:
        query_shape = (inputs_shape[0], self.units)
        input_dim = inputs_shape[-1]
        self.attention = None
        if self.attention_type is not None:
            if memory_shape is None:
                raise ValueError("An attention decoder needs the memory shape to build.")
            if self.attention_type == "bahdanau":
                self.attention = BahdanauAttention(self.units, dtype=self.dtype_policy, name="attention")
                input_dim += memory_shape[-1]
            else:
                score_mode = self.attention_type.removeprefix("luong_")
                self.attention = LuongAttention(score_mode, dtype=self.dtype_policy, name="attention")
            self.attention.build(query_shape, memory_shape)
            self.attention_combine = Dense(
                self.units, activation="tanh", dtype=self.dtype_policy, name="attention_combine"
            )
            self.attention_combine.build((inputs_shape[0], memory_shape[-1] + self.units))
        self.lstm_cells = []
        for index in range(self.num_layers):
            cell = keras.layers.LSTMCell(self.units, dtype=self.dtype_policy, name=f"lstm_cell_{index}")
            cell.build((inputs_shape[0], input_dim if index == 0 else self.units))
            self.lstm_cells.append(cell)
        self.built = True

    def step(
        self,
        inputs: Any,
        state: tuple[Any, Any],
        memory: Any = None,
        memory_keys: Any = None,
        memory_padding_mask: Any = None,
    ) -> tuple[Any, tuple[Any, Any]]:
        """One decoding step.

        Args:
            inputs: [B, E] embedded input token.
            state: `(hidden, cell)`, each [B, num_layers, units].
            memory: [B, S, D_m] encoder outputs; memory_keys: `self.attention.project_keys(memory)`;
            memory_padding_mask: boolean [B, S].

        Returns:
            `(output [B, units], (hidden, cell))`.
        """
        if self.attention_type == "bahdanau":
            context, _ = self.attention(state[0][:, -1], memory_keys, memory, memory_padding_mask=memory_padding_mask)
            x, state = self.recurrent_step(ops.concatenate([inputs, context], axis=-1), state)
            return self.attention_combine(ops.concatenate([context, x], axis=-1)), state
        x, state = self.recurrent_step(inputs, state)
        if self.attention is not None:
            x = self.luong_output(x, memory, memory_keys, memory_padding_mask)
        return x, state

    def recurrent_step(self, inputs: Any, state: tuple[Any, Any]) -> tuple[Any, tuple[Any, Any]]:
        """The stacked LSTM cells alone: `(top hidden state [B, units], (hidden, cell))`."""
        hidden, cell = state
        new_hidden, new_cell = [], []
        x = inputs
        for index, lstm_cell in enumerate(self.lstm_cells):
            x, (h, c) = lstm_cell(x, [hidden[:, index], cell[:, index]])
            new_hidden.append(h)
            new_cell.append(c)
        return x, (ops.stack(new_hidden, axis=1), ops.stack(new_cell, axis=1))

    def luong_output(self, top_hidden: Any, memory: Any, memory_keys: Any, memory_padding_mask: Any = None) -> Any:
        """h~_t = tanh(W_c [c_t; h_t]) for the top LSTM state(s) h_t, [B, units] or [B, T, units] (Luong only).

        Luong attention (without input feeding) depends on h_t alone, so `LSTMDecoder` applies this to all T
        steps at once after the recurrent scan, where decoding applies it one step at a time.
        """
        context, _ = self.attention(top_hidden, memory_keys, memory, memory_padding_mask=memory_padding_mask)
        return self.attention_combine(ops.concatenate([context, top_hidden], axis=-1))

    def call(self, inputs: Any, states: list[Any]) -> tuple[Any, list[Any]]:
        """The Keras RNN cell interface: `step` with Bahdanau attention, else `recurrent_step`; states as
        described in the class docstring."""
        hidden, cell, *constants = states
        if constants:
            memory, memory_keys, memory_padding_mask = constants
            output, (hidden, cell) = self.step(
                inputs,
                (hidden, cell),
                memory,
                memory_keys,
                memory_padding_mask=ops.cast(memory_padding_mask, "bool"),
            )
        else:
            output, (hidden, cell) = self.recurrent_step(inputs, (hidden, cell))
        return output, [hidden, cell, *constants]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"units": self.units, "num_layers": self.num_layers, "attention": self.attention_type})
        return config


@keras.saving.register_keras_serializable(package="kerasllm")
class LSTMDecoder(keras.layers.Layer):
    """The LSTM decoder over a whole target sequence (teacher forcing): `LSTMDecoderCell` run by `keras.layers.RNN`.

    Args:
        units: int, the LSTM size (all layers).
        num_layers: int, the number of stacked LSTM layers. Defaults to `1`.
        attention: one of `None`, `"luong_dot"`, `"luong_general"`, `"bahdanau"` (see `LSTMDecoderCell`).
            Defaults to `None`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: [B, T, E] embedded decoder inputs.
        initial_hidden, initial_cell: [B, num_layers, units] initial LSTM states (e.g. from the encoder).
        memory: [B, S, D_m] encoder outputs (needed with attention).
        memory_padding_mask: boolean [B, S], True for real source tokens.

    Returns:
        [B, T, units] decoder outputs.

    Example:

    ```python
    decoder = kerasllm.layers.LSTMDecoder(units=16, attention="luong_general")
    inputs = np.random.uniform(size=(2, 5, 8)).astype("float32")
    memory = np.random.uniform(size=(2, 7, 32)).astype("float32")
    states = np.zeros((2, 1, 16), dtype="float32")
    outputs = decoder(inputs, states, states, memory)  # [2, 5, 16]
    ```
    """

    def __init__(self, units: int, num_layers: int = 1, attention: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.attention_type = attention
        self.supports_masking = True  # the output keeps the decoder inputs' mask
        self.cell = LSTMDecoderCell(units, num_layers, attention, dtype=self.dtype_policy, name="cell")
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, dtype=self.dtype_policy, name="rnn")

    def build(self, inputs_shape: tuple, memory_shape: tuple | None = None) -> None:
        self.cell.build((inputs_shape[0], inputs_shape[-1]), memory_shape)
        self.rnn.build(inputs_shape)
        self.built = True

    @property
    def attention(self) -> keras.layers.Layer | None:
        return self.cell.attention

    def call(
        self,
        inputs: Any,
        initial_hidden: Any,
        initial_cell: Any,
        memory: Any = None,
        memory_padding_mask: Any = None,
    ) -> Any:
        states = [initial_hidden, initial_cell]
        if self.attention is None:
            return self.rnn(inputs, initial_state=states)
        if memory_padding_mask is None:
            memory_padding_mask = ops.ones(ops.shape(memory)[:2], dtype="bool")
        memory_keys = self.attention.project_keys(memory)
        if self.attention_type == "bahdanau":  # the context feeds the recurrence: attend inside the scan
            return self.rnn(inputs, initial_state=states + [memory, memory_keys, memory_padding_mask])
        # Luong: scan the LSTMs alone, then attend from all steps at once (batched matmuls, not T small ones
        # inside the loop; same maths as `step`), which trains faster on CPU (apps/translate/README.md).
        outputs = self.rnn(inputs, initial_state=states)
        return self.cell.luong_output(outputs, memory, memory_keys, memory_padding_mask)

    def compute_output_shape(self, inputs_shape: tuple, *args: Any) -> tuple:
        return tuple(inputs_shape[:-1]) + (self.units,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"units": self.units, "num_layers": self.num_layers, "attention": self.attention_type})
        return config
