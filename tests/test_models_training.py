"""Tiny models learn a 200-pair task under `model.fit` with `jit_compile=True` (the end-to-end check that
masks, teacher forcing and the loss fit together)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasllm.models import LSTMSeq2Seq, Transformer

VOCABULARY = 16  # [PAD]=0, [UNK]=1, [START]=2, [END]=3, then 12 symbols
START, END = 2, 3


def task_pairs(reverse: bool, count: int = 200, seed: int = 0):
    """(source, decoder inputs) and targets: target = source (copy) or reversed source, then [END]."""
    rng = np.random.default_rng(seed)
    max_length = 8
    source = np.zeros((count, max_length), "int32")
    decoder_inputs = np.zeros((count, max_length + 1), "int32")
    targets = np.zeros((count, max_length + 1), "int32")
    for row in range(count):
        tokens = rng.integers(4, VOCABULARY, size=rng.integers(3, max_length + 1))
        output = tokens[::-1] if reverse else tokens
        source[row, : len(tokens)] = tokens
        decoder_inputs[row, : len(tokens) + 1] = [START, *output]
        targets[row, : len(tokens) + 1] = [*output, END]
    return (source, decoder_inputs), targets


def fit_and_score(model: keras.Model, reverse: bool, epochs: int, learning_rate: float) -> float:
    inputs, targets = task_pairs(reverse)
    keras.utils.set_random_seed(0)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        jit_compile=True,
    )
    model.fit(inputs, targets, batch_size=25, epochs=epochs, verbose=0)
    predictions = model.predict(inputs, batch_size=100, verbose=0).argmax(-1)
    real = targets != 0
    return float((predictions[real] == targets[real]).mean())


@pytest.mark.slow
def test_transformer_learns_to_reverse():
    keras.utils.set_random_seed(0)
    model = Transformer(
        VOCABULARY,
        VOCABULARY,
        num_encoder_layers=1,
        num_decoder_layers=1,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=64,
        dropout=0.0,
        max_length=16,
    )
    assert fit_and_score(model, reverse=True, epochs=80, learning_rate=3e-3) >= 0.99


@pytest.mark.slow
def test_lstm_with_attention_learns_to_copy():
    keras.utils.set_random_seed(0)
    model = LSTMSeq2Seq(VOCABULARY, VOCABULARY, embedding_dim=16, units=64, attention="luong_general")
    assert fit_and_score(model, reverse=False, epochs=80, learning_rate=1e-2) >= 0.99
