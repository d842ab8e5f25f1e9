"""kerasllm.layers: attention maths and masks, positions, embeddings, parity with keras-hub, .keras round trips."""

from __future__ import annotations

import math

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from kerasllm import layers

RNG = np.random.default_rng(0)


def random_floats(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype("float32")


def padding_mask(lengths: list[int], max_length: int) -> np.ndarray:
    return np.arange(max_length)[None, :] < np.array(lengths)[:, None]


def reference_attention(query, key, value, mask):
    """softmax(Q K^T / sqrt(d_k)) V in numpy, per head, for [B, T, H, d_k] inputs and a [B, T, S] mask."""
    logits = np.einsum("btnh,bsnh->bnts", query, key) / math.sqrt(query.shape[-1])
    logits = np.where(mask[:, None], logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", weights, value)


# --- MultiHeadAttention -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fused_qkv", [True, False])
def test_attention_matches_the_paper_equation(fused_qkv):
    attention = layers.MultiHeadAttention(num_heads=2, fused_qkv=fused_qkv)
    query, memory = random_floats(2, 3, 8), random_floats(2, 5, 8)
    mask = np.broadcast_to(padding_mask([5, 2], 5)[:, None, :], (2, 3, 5))
    output, scores = attention(query, memory, attention_mask=mask, return_attention_scores=True)

    q = ops.convert_to_numpy(attention._split_heads(attention.query_dense(query)))
    k, v = (ops.convert_to_numpy(x) for x in attention.project_key_value(memory))
    heads = reference_attention(q, k, v, mask).reshape(2, 3, 8)
    expected = ops.convert_to_numpy(attention.output_dense(heads))
    np.testing.assert_allclose(ops.convert_to_numpy(output), expected, atol=1e-5)
    assert scores.shape == (2, 2, 3, 5)
    np.testing.assert_allclose(ops.convert_to_numpy(scores)[1, :, :, 2:], 0.0)  # padded keys get no attention
    fast = attention(query, memory, attention_mask=mask)  # the keras.ops.dot_product_attention path
    np.testing.assert_allclose(ops.convert_to_numpy(fast), ops.convert_to_numpy(output), atol=1e-5)


def test_causal_mask_hides_later_positions_and_unwritten_cache_slots():
    np.testing.assert_array_equal(ops.convert_to_numpy(layers.causal_mask(3, 3)), np.tril(np.ones((3, 3), bool)))
    np.testing.assert_array_equal(ops.convert_to_numpy(layers.causal_mask(1, 4, offset=2)), [[True, True, True, False]])


def test_fully_masked_row_is_finite():
    attention = layers.MultiHeadAttention(num_heads=2)
    query, memory = random_floats(2, 3, 8), random_floats(2, 4, 8)
    attention.build(query.shape, memory.shape)
    mask = np.zeros((2, 1, 4), bool)  # e.g. an all-padding source
    for return_scores in (False, True):
        output = attention(query, memory, attention_mask=mask, return_attention_scores=return_scores)
        output = output[0] if return_scores else output
        assert np.isfinite(ops.convert_to_numpy(output)).all()


def test_attention_cache_matches_full_causal_pass():
    attention = layers.MultiHeadAttention(num_heads=2)
    x = random_floats(2, 4, 8)
    full = ops.convert_to_numpy(attention(x, use_causal_mask=True))
    cache = (np.zeros((2, 6, 2, 4), "float32"), np.zeros((2, 6, 2, 4), "float32"))
    for index in range(4):
        step, cache = attention(x[:, index : index + 1], use_causal_mask=True, cache=cache, cache_update_index=index)
        np.testing.assert_allclose(ops.convert_to_numpy(step)[:, 0], full[:, index], atol=1e-5)
    assert cache[0].shape == (2, 6, 2, 4)


def test_attention_dropout_only_in_training():
    attention = layers.MultiHeadAttention(num_heads=2, attention_dropout=0.5)
    x = random_floats(2, 4, 8)
    inference = ops.convert_to_numpy(attention(x, training=False))
    np.testing.assert_allclose(ops.convert_to_numpy(attention(x, training=False)), inference)
    assert not np.allclose(ops.convert_to_numpy(attention(x, training=True)), inference)


def test_project_key_value_rejects_fused_self_attention():
    attention = layers.MultiHeadAttention(num_heads=2)
    attention.build((None, 3, 8))
    with pytest.raises(ValueError, match="cross-attention"):
        attention.project_key_value(random_floats(1, 3, 8))


# --- Positions and embeddings -----------------------------------------------------------------------------------


def test_sinusoidal_encoding_is_the_papers_interleaved_formula():
    encoding = ops.convert_to_numpy(layers.SinusoidalPositionEncoding()(np.zeros((1, 6, 10), "float32")))[0]
    position, i = np.arange(6)[:, None], np.arange(5)[None, :]
    angle = position / 10000 ** (2 * i / 10)
    np.testing.assert_allclose(encoding[:, 0::2], np.sin(angle), atol=1e-6)
    np.testing.assert_allclose(encoding[:, 1::2], np.cos(angle), atol=1e-6)
    shifted = layers.SinusoidalPositionEncoding()(np.zeros((1, 2, 10), "float32"), start_index=4)
    np.testing.assert_allclose(ops.convert_to_numpy(shifted)[0], encoding[4:6], atol=1e-6)


def test_learned_positions_start_index():
    positions = layers.LearnedPositionEmbedding(sequence_length=8)
    full = ops.convert_to_numpy(positions(np.zeros((2, 5, 4), "float32")))
    step = ops.convert_to_numpy(positions(np.zeros((2, 1, 4), "float32"), start_index=ops.convert_to_tensor(3)))
    np.testing.assert_allclose(step[:, 0], full[:, 3])


def test_token_and_position_embedding_scales_masks_and_ties():
    embedding = layers.TokenAndPositionEmbedding(vocabulary_size=20, sequence_length=8, embedding_dim=4)
    tokens = np.array([[5, 6, 0]])
    output = embedding(tokens)
    table = ops.convert_to_numpy(embedding.token_embedding.embeddings)
    positions = ops.convert_to_numpy(embedding.position_embedding(np.zeros((1, 3, 4), "float32")))
    np.testing.assert_allclose(ops.convert_to_numpy(output), table[tokens] * 2.0 + positions, atol=1e-6)
    np.testing.assert_array_equal(ops.convert_to_numpy(output._keras_mask), [[True, True, False]])
    logits = embedding.token_embedding(random_floats(1, 3, 4), reverse=True)
    assert logits.shape == (1, 3, 20) and logits.dtype == "float32"


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_tied_logits_equal_the_reverse_embedding(dtype):
    embedding = keras.layers.ReversibleEmbedding(30, 8, reverse_dtype="float32", dtype=dtype)
    embedding.build((None,))
    step, sequence = random_floats(4, 8), random_floats(2, 3, 8)  # a decoding step's rows; a training batch
    for hidden in (step, sequence):
        logits = layers.tied_logits(embedding, hidden)
        expected = ops.convert_to_numpy(embedding(hidden, reverse=True))
        assert logits.dtype == "float32" and logits.shape == expected.shape
        np.testing.assert_allclose(ops.convert_to_numpy(logits), expected, rtol=1e-5, atol=1e-5)


# --- Dense ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (2, 0, 4), (0, 3, 4), (2, 3, 5, 4)])
def test_dense_equals_keras_dense(shape):
    ours, theirs = layers.Dense(6, activation="relu"), keras.layers.Dense(6, activation="relu")
    ours.build(shape)
    theirs.build(shape)
    theirs.set_weights(ours.get_weights())
    x = random_floats(*shape)
    output = ops.convert_to_numpy(ours(x))
    assert output.shape == shape[:-1] + (6,)
    np.testing.assert_allclose(output, ops.convert_to_numpy(theirs(x)), rtol=1e-6, atol=1e-6)


def test_dense_step_graph_has_no_run_time_shape_ops():
    import tensorflow as tf

    dense = layers.Dense(6)
    dense.build((None, 1, 4))
    graph = tf.function(dense).get_concrete_function(tf.TensorSpec([None, 1, 4])).graph
    op_types = {op.type for op in graph.get_operations()}
    assert "MatMul" in op_types and not op_types & {"Shape", "StridedSlice", "Pack", "GatherV2"}, op_types


def test_feed_forward_gelu():
    ffn = layers.FeedForward(intermediate_dim=6, activation="gelu")
    x = random_floats(2, 3, 4)
    output = ops.convert_to_numpy(ffn(x))
    w1, b1 = (ops.convert_to_numpy(w) for w in ffn.intermediate_dense.weights)
    w2, b2 = (ops.convert_to_numpy(w) for w in ffn.output_dense.weights)
    hidden = ops.convert_to_numpy(keras.activations.gelu(x @ w1 + b1))
    np.testing.assert_allclose(output, hidden @ w2 + b2, atol=1e-5)


# --- Transformer layers: parity with keras-hub ------------------------------------------------------------------


def copy_attention(ours: layers.MultiHeadAttention, theirs: keras.layers.MultiHeadAttention) -> None:
    """Copy a Keras MHA's [d, heads, head_dim] projections into ours ([d, d], or concatenated when fused)."""
    d = ours.model_dim
    q, k, v = (
        ops.convert_to_numpy(getattr(theirs, f"_{n}_dense").kernel).reshape(-1, d) for n in ("query", "key", "value")
    )
    qb, kb, vb = (
        ops.convert_to_numpy(getattr(theirs, f"_{n}_dense").bias).reshape(d) for n in ("query", "key", "value")
    )
    if ours.fused_qkv and not ours.is_cross_attention:
        ours.query_key_value_dense.set_weights([np.concatenate([q, k, v], 1), np.concatenate([qb, kb, vb])])
    else:
        ours.query_dense.set_weights([q, qb])
        if ours.fused_qkv:
            ours.key_value_dense.set_weights([np.concatenate([k, v], 1), np.concatenate([kb, vb])])
        else:
            ours.key_dense.set_weights([k, kb])
            ours.value_dense.set_weights([v, vb])
    output = theirs._output_dense
    ours.output_dense.set_weights(
        [ops.convert_to_numpy(output.kernel).reshape(d, d), ops.convert_to_numpy(output.bias)]
    )


def copy_common(ours, theirs) -> None:
    ours.self_attention_layer_norm.set_weights(theirs._self_attention_layer_norm.get_weights())
    ours.feedforward.intermediate_dense.set_weights(theirs._feedforward_intermediate_dense.get_weights())
    ours.feedforward.output_dense.set_weights(theirs._feedforward_output_dense.get_weights())
    ours.feedforward_layer_norm.set_weights(theirs._feedforward_layer_norm.get_weights())


@pytest.mark.parametrize("fused_qkv", [True, False])
def test_encoder_layer_matches_keras_hub(fused_qkv):
    x, mask = random_floats(3, 6, 16), padding_mask([6, 4, 1], 6)
    theirs = keras_hub.layers.TransformerEncoder(intermediate_dim=32, num_heads=4)
    expected = ops.convert_to_numpy(theirs(x, padding_mask=mask))
    ours = layers.TransformerEncoderLayer(num_heads=4, intermediate_dim=32, fused_qkv=fused_qkv)
    ours.build(x.shape)
    copy_attention(ours.self_attention, theirs._self_attention_layer)
    copy_common(ours, theirs)
    np.testing.assert_allclose(ops.convert_to_numpy(ours(x, padding_mask=mask)), expected, atol=1e-5)


@pytest.mark.parametrize("fused_qkv", [True, False])
def test_decoder_layer_matches_keras_hub(fused_qkv):
    x, decoder_mask = random_floats(3, 5, 16), padding_mask([5, 3, 2], 5)
    memory, memory_mask = random_floats(3, 7, 16), padding_mask([7, 2, 5], 7)
    theirs = keras_hub.layers.TransformerDecoder(intermediate_dim=32, num_heads=4)
    expected = theirs(x, memory, decoder_padding_mask=decoder_mask, encoder_padding_mask=memory_mask)
    ours = layers.TransformerDecoderLayer(num_heads=4, intermediate_dim=32, fused_qkv=fused_qkv)
    ours.build(x.shape, memory.shape)
    copy_attention(ours.self_attention, theirs._self_attention_layer)
    copy_attention(ours.cross_attention, theirs._cross_attention_layer)
    ours.cross_attention_layer_norm.set_weights(theirs._cross_attention_layer_norm.get_weights())
    copy_common(ours, theirs)
    output = ours(x, memory, padding_mask=decoder_mask, memory_padding_mask=memory_mask)
    np.testing.assert_allclose(ops.convert_to_numpy(output), ops.convert_to_numpy(expected), atol=1e-5)


def test_pre_norm_decoder_layer_cache_and_precomputed_memory():
    layer = layers.TransformerDecoderLayer(num_heads=2, intermediate_dim=16, normalize_first=True, activation="gelu")
    x, memory, memory_mask = random_floats(2, 4, 8), random_floats(2, 5, 8), padding_mask([5, 3], 5)
    full = ops.convert_to_numpy(layer(x, memory, memory_padding_mask=memory_mask))
    memory_key_value = layer.cross_attention.project_key_value(memory)
    cache = (np.zeros((2, 4, 2, 4), "float32"),) * 2
    for index in range(4):
        step, cache = layer(
            x[:, index : index + 1],
            memory_padding_mask=memory_mask,
            cache=cache,
            cache_update_index=index,
            memory_key_value=memory_key_value,
        )
        np.testing.assert_allclose(ops.convert_to_numpy(step)[:, 0], full[:, index], atol=1e-5)


def test_encoder_layer_propagates_the_keras_mask():
    embedding = layers.TokenAndPositionEmbedding(vocabulary_size=20, sequence_length=8, embedding_dim=8)
    tokens = np.array([[5, 6, 0, 0], [7, 0, 0, 0]])
    hidden = embedding(tokens)
    implicit = layers.TransformerEncoderLayer(num_heads=2, intermediate_dim=16)(hidden)
    np.testing.assert_array_equal(ops.convert_to_numpy(implicit._keras_mask), tokens != 0)


def test_transformer_layers_read_absent_padding_masks_from_keras_masks():
    embedding = layers.TokenAndPositionEmbedding(vocabulary_size=20, sequence_length=8, embedding_dim=8)
    tokens, memory_tokens = np.array([[5, 6, 7, 8], [7, 8, 0, 0]]), np.array([[9, 10, 11], [12, 0, 0]])
    hidden, memory = embedding(tokens), embedding(memory_tokens)
    unmasked_memory = ops.convert_to_tensor(ops.convert_to_numpy(memory))  # the same values, no Keras mask
    encoder_layer = layers.TransformerEncoderLayer(num_heads=2, intermediate_dim=16)
    explicit = ops.convert_to_numpy(encoder_layer(memory, padding_mask=memory_tokens != 0))
    np.testing.assert_allclose(ops.convert_to_numpy(encoder_layer(memory)), explicit, atol=1e-6)
    assert not np.allclose(ops.convert_to_numpy(encoder_layer(unmasked_memory)), explicit, atol=1e-3)
    decoder_layer = layers.TransformerDecoderLayer(num_heads=2, intermediate_dim=16)
    explicit = ops.convert_to_numpy(
        decoder_layer(hidden, memory, padding_mask=tokens != 0, memory_padding_mask=memory_tokens != 0)
    )
    np.testing.assert_allclose(ops.convert_to_numpy(decoder_layer(hidden, memory)), explicit, atol=1e-6)
    assert not np.allclose(ops.convert_to_numpy(decoder_layer(hidden, unmasked_memory)), explicit, atol=1e-3)


# --- Recurrent attention and the LSTM decoder -------------------------------------------------------------------


@pytest.mark.parametrize(
    "attention", [layers.LuongAttention("dot"), layers.LuongAttention("general"), layers.BahdanauAttention(6)]
)
def test_recurrent_attention_masks_padding(attention):
    query, memory, mask = random_floats(2, 8), random_floats(2, 5, 8), padding_mask([5, 2], 5)
    attention.build(query.shape, memory.shape)
    keys = attention.project_keys(memory)
    context, weights = attention(query, keys, memory, memory_padding_mask=mask)
    weights = ops.convert_to_numpy(weights)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(weights[1, 2:], 0.0)
    np.testing.assert_allclose(ops.convert_to_numpy(context), np.einsum("bs,bsd->bd", weights, memory), atol=1e-5)
    _, all_padding = attention(query, keys, memory, memory_padding_mask=np.zeros((2, 5), bool))
    assert np.isfinite(ops.convert_to_numpy(all_padding)).all()


def test_luong_dot_needs_equal_sizes():
    with pytest.raises(ValueError, match="general"):
        layers.LuongAttention("dot").build((None, 4), (None, 3, 8))


@pytest.mark.parametrize("attention", [None, "luong_dot", "luong_general", "bahdanau"])
def test_lstm_decoder_call_is_the_scanned_step(attention):
    decoder = layers.LSTMDecoder(units=8, num_layers=2, attention=attention)
    inputs, memory, mask = random_floats(2, 4, 6), random_floats(2, 5, 8), padding_mask([5, 3], 5)
    hidden, cell = random_floats(2, 2, 8), random_floats(2, 2, 8)
    outputs = ops.convert_to_numpy(decoder(inputs, hidden, cell, memory, memory_padding_mask=mask))
    keys = None if decoder.attention is None else decoder.attention.project_keys(memory)
    state = (hidden, cell)
    for index in range(4):
        step, state = decoder.cell.step(inputs[:, index], state, memory, keys, memory_padding_mask=mask)
        np.testing.assert_allclose(ops.convert_to_numpy(step), outputs[:, index], atol=1e-5)


# --- Serialization ----------------------------------------------------------------------------------------------


def round_trip(model: keras.Model, inputs, tmp_path) -> None:
    expected = model(inputs)
    path = tmp_path / "layer.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    actual = restored(inputs)
    for a, e in zip(keras.tree.flatten(actual), keras.tree.flatten(expected)):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(e))


SEQUENCE_LAYERS = [
    lambda: layers.MultiHeadAttention(num_heads=2, fused_qkv=False),
    lambda: layers.SinusoidalPositionEncoding(),
    lambda: layers.LearnedPositionEmbedding(sequence_length=8),
    lambda: layers.FeedForward(intermediate_dim=16, activation="gelu"),
    lambda: layers.Dense(6, activation="relu"),
    lambda: layers.TransformerEncoderLayer(num_heads=2, intermediate_dim=16, normalize_first=True),
]


@pytest.mark.parametrize("make_layer", SEQUENCE_LAYERS)
def test_sequence_layer_round_trip(make_layer, tmp_path):
    inputs = keras.Input((None, 8))
    round_trip(keras.Model(inputs, make_layer()(inputs)), random_floats(2, 5, 8), tmp_path)


def test_embedding_and_decoder_layer_round_trip(tmp_path):
    tokens, memory = keras.Input((None,), dtype="int32"), keras.Input((None, 8))
    hidden = layers.TokenAndPositionEmbedding(20, 8, 8, position="learned")(tokens)
    outputs = layers.TransformerDecoderLayer(num_heads=2, intermediate_dim=16)(hidden, memory)
    model = keras.Model((tokens, memory), outputs)
    round_trip(model, (np.array([[3, 4, 5, 0]], "int32"), random_floats(1, 6, 8)), tmp_path)


@pytest.mark.parametrize("attention", ["luong_general", "bahdanau"])
def test_lstm_decoder_round_trip(attention, tmp_path):
    inputs, hidden, cell, memory = (keras.Input(shape) for shape in [(None, 6), (1, 8), (1, 8), (None, 8)])
    outputs = layers.LSTMDecoder(units=8, attention=attention)(inputs, hidden, cell, memory)
    model = keras.Model((inputs, hidden, cell, memory), outputs)
    round_trip(
        model,
        (random_floats(2, 4, 6), random_floats(2, 1, 8), random_floats(2, 1, 8), random_floats(2, 5, 8)),
        tmp_path,
    )
