"""One set of layers builds every model: a text classifier on a TransformerEncoder, the decoder-only CausalLM and the
seq2seq Transformer; decoder layers without memory; cached generation; RNNEncoder; .keras round trips."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kerasllm import layers
from kerasllm.models import Transformer, TransformerDecoder, TransformerEncoder
from kerasllm.tasks import CausalLM

VOCABULARY = 37
WIDTHS = dict(hidden_dim=16, num_heads=4, intermediate_dim=32)


def right_padded(lengths: list[int], width: int, seed: int = 0) -> np.ndarray:
    """Token ids in 4 ... VOCABULARY - 1, row i real for its first lengths[i] positions, then 0."""
    tokens = np.random.default_rng(seed).integers(4, VOCABULARY, size=(len(lengths), width)).astype("int32")
    tokens[np.arange(width)[None, :] >= np.array(lengths)[:, None]] = 0
    return tokens


def text_classifier(num_classes: int = 3) -> keras.Model:
    """The pattern of a sentence classifier: encoder, masked mean over the real tokens, Dense head."""
    encoder = TransformerEncoder(VOCABULARY, num_layers=2, **WIDTHS, max_length=16, name="encoder")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(token_ids))
    return keras.Model(token_ids, keras.layers.Dense(num_classes, name="classifier_head")(pooled))


def tiny_causal_lm(**overrides) -> CausalLM:
    args = dict(vocabulary_size=VOCABULARY, num_layers=2, **WIDTHS, dropout=0.1, max_length=16)
    return CausalLM(**{**args, **overrides})


def to_numpy(tensors):
    return keras.tree.map_structure(ops.convert_to_numpy, tensors)


# --- One set of layers ------------------------------------------------------------------------------------------


def test_text_classifier_trains_with_fit():
    keras.utils.set_random_seed(0)
    model = text_classifier()
    tokens = right_padded([8, 5, 3, 8, 1, 6, 7, 2], 8)
    labels = np.random.default_rng(1).integers(0, 3, size=(8,))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(tokens, labels, batch_size=4, epochs=1, verbose=0)  # 2 steps
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(tokens, verbose=0).shape == (8, 3)


def test_classifier_pools_over_real_tokens_only():
    model = text_classifier()
    tokens = right_padded([6, 3], 6)
    padded = np.pad(tokens, ((0, 0), (0, 4)))
    np.testing.assert_allclose(to_numpy(model(padded)), to_numpy(model(tokens)), atol=1e-5)
    encoder = model.get_layer("encoder")
    np.testing.assert_array_equal(to_numpy(encoder(tokens)._keras_mask), tokens != 0)


def test_classifier_causal_lm_and_seq2seq_share_the_layer_classes():
    classifier_encoder = text_classifier().get_layer("encoder")
    causal_lm = tiny_causal_lm()
    seq2seq = Transformer(VOCABULARY, VOCABULARY, 1, 1, **WIDTHS, max_length=16)
    assert isinstance(classifier_encoder, TransformerEncoder) and isinstance(seq2seq.encoder, TransformerEncoder)
    assert isinstance(causal_lm.backbone, TransformerDecoder) and isinstance(seq2seq.decoder, TransformerDecoder)
    for backbone in (classifier_encoder, seq2seq.encoder, causal_lm.backbone, seq2seq.decoder):
        assert isinstance(backbone.embedding, layers.TokenAndPositionEmbedding)
    assert all(type(layer) is layers.TransformerEncoderLayer for layer in classifier_encoder.transformer_layers)
    decoder_layers = causal_lm.backbone.transformer_layers + seq2seq.decoder.transformer_layers
    assert all(type(layer) is layers.TransformerDecoderLayer for layer in decoder_layers)
    # The GPT's layers have no cross-attention; the seq2seq decoder's do.
    assert all(layer.cross_attention is None for layer in causal_lm.backbone.transformer_layers)
    assert all(layer.cross_attention is not None for layer in seq2seq.decoder.transformer_layers)


# --- TransformerDecoderLayer with and without memory --------------------------------------------------------------


def test_decoder_layer_without_memory_is_a_gpt_block():
    x = np.random.default_rng(0).normal(size=(2, 5, 16)).astype("float32")
    gpt_block = layers.TransformerDecoderLayer(num_heads=4, intermediate_dim=32)
    paper_layer = layers.TransformerDecoderLayer(num_heads=4, intermediate_dim=32)
    output = gpt_block(x)
    paper_layer(x, x)
    assert output.shape == (2, 5, 16)
    assert gpt_block.cross_attention is None and gpt_block.cross_attention_layer_norm is None
    assert not [w.path for w in gpt_block.weights if "cross_attention" in w.path]
    assert [w.path for w in paper_layer.weights if "cross_attention" in w.path]
    # Causal: changing a later position leaves the earlier outputs alone.
    changed = x.copy()
    changed[:, 3:] += 1.0
    np.testing.assert_allclose(to_numpy(gpt_block(changed))[:, :3], to_numpy(output)[:, :3], atol=1e-6)


def test_decoder_layer_memory_must_match_how_it_was_built():
    x = np.random.default_rng(0).normal(size=(2, 5, 16)).astype("float32")
    gpt_block = layers.TransformerDecoderLayer(num_heads=4, intermediate_dim=32)
    gpt_block(x)
    with pytest.raises(ValueError, match="built without cross-attention"):
        gpt_block(x, x)
    paper_layer = layers.TransformerDecoderLayer(num_heads=4, intermediate_dim=32)
    paper_layer(x, x)
    with pytest.raises(ValueError, match="built with cross-attention"):
        paper_layer(x)
    with pytest.raises(ValueError, match="cross-attention scores"):
        gpt_block(x, return_attention_scores=True)


# --- Cached decoding ---------------------------------------------------------------------------------------------


def test_causal_lm_prefill_then_steps_equal_the_full_pass():
    keras.utils.set_random_seed(0)
    model = tiny_causal_lm()
    tokens = right_padded([10, 6, 3], 10)  # row 1 pads among the steps, row 2 inside the prompt
    full = to_numpy(model(tokens, training=False))
    assert full.shape == (3, 10, VOCABULARY) and full.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(model.compute_mask(tokens)), tokens != 0)
    real = tokens != 0
    prompt_length = 4
    cache = model.init_cache(3, 16)
    logits, new_cache = model.call_with_cache(tokens[:, :prompt_length], cache, 0)
    cached = [to_numpy(logits)]
    for index in range(prompt_length, tokens.shape[1]):
        assert keras.tree.map_structure(lambda x: (x.shape, x.dtype), new_cache) == keras.tree.map_structure(
            lambda x: (x.shape, x.dtype), cache
        )
        logits, new_cache = model.call_with_cache(tokens[:, index : index + 1], new_cache, index)
        cached.append(to_numpy(logits))
    cached = np.concatenate(cached, axis=1)
    assert cached.dtype == np.float32
    np.testing.assert_allclose(cached[real], full[real], atol=1e-5)


def test_causal_lm_cached_steps_in_a_compiled_loop():
    """Prefill then greedy steps under XLA, with the static-shape cache carried by a while_loop."""
    model = tiny_causal_lm(num_layers=1)
    prompt = right_padded([4, 4], 4)
    steps = 3

    def generate(prompt):
        cache = model.init_cache(2, 16)
        logits, cache = model.call_with_cache(prompt, cache, 0)
        tokens = tf.argmax(logits[:, -1], axis=-1, output_type=tf.int32)
        outputs = tf.TensorArray(tf.int32, size=steps)

        def body(index, tokens, cache, outputs):
            outputs = outputs.write(index - prompt.shape[1], tokens)
            logits, cache = model.call_with_cache(tokens[:, None], cache, index)
            return index + 1, tf.argmax(logits[:, 0], axis=-1, output_type=tf.int32), cache, outputs

        loop_vars = (tf.constant(prompt.shape[1]), tokens, cache, outputs)
        _, _, _, outputs = tf.while_loop(lambda index, *_: index < prompt.shape[1] + steps, body, loop_vars)
        return tf.transpose(outputs.stack())

    compiled = tf.function(generate, jit_compile=True)(tf.constant(prompt)).numpy()
    np.testing.assert_array_equal(compiled, generate(tf.constant(prompt)).numpy())
    # Each generated token is the full pass's argmax after the sequence so far.
    sequence = np.concatenate([prompt, compiled], axis=1)
    full = to_numpy(model(sequence, training=False))
    np.testing.assert_array_equal(full[:, prompt.shape[1] - 1 : -1].argmax(-1), compiled)


def test_causal_lm_mixed_precision_keeps_float32_logits_and_the_cache_dtype():
    model = tiny_causal_lm(dtype="mixed_bfloat16")
    tokens = right_padded([5, 2], 5)
    assert model(tokens).dtype == "float32"
    cache = model.init_cache(2, 8)
    logits, new_cache = model.call_with_cache(tokens, cache, 0)
    assert logits.dtype == "float32" and np.isfinite(to_numpy(logits)).all()
    assert all(x.dtype == "bfloat16" for x in keras.tree.flatten(cache))
    assert [x.dtype for x in keras.tree.flatten(new_cache)] == [x.dtype for x in keras.tree.flatten(cache)]


def test_cross_attention_decoder_prefill_equals_the_full_pass():
    encoder = TransformerEncoder(VOCABULARY, 1, **WIDTHS, dropout=0.0, max_length=16)
    decoder = TransformerDecoder(VOCABULARY, 2, **WIDTHS, dropout=0.0, max_length=16, cross_attention=True)
    source, target = right_padded([7, 4], 7), right_padded([5, 5], 5, seed=1)
    memory, memory_padding_mask = encoder(source), ops.not_equal(source, 0)
    full = decoder(
        {"token_ids": ops.convert_to_tensor(target), "memory": memory, "memory_padding_mask": memory_padding_mask}
    )
    cache = decoder.init_cache(2, 8)
    projected = decoder.project_memory(memory)
    prefill, cache = decoder.call_with_cache(target[:, :3], cache, 0, projected, memory_padding_mask)
    step, cache = decoder.call_with_cache(target[:, 3:4], cache, 3, projected, memory_padding_mask)
    np.testing.assert_allclose(np.concatenate(to_numpy([prefill, step]), 1), to_numpy(full)[:, :4], atol=1e-5)
    with pytest.raises(ValueError, match="built with cross-attention"):
        decoder.call_with_cache(target[:, :3], decoder.init_cache(2, 8), 0)


def test_shared_embedding_must_fit():
    encoder = TransformerEncoder(VOCABULARY, 1, **WIDTHS)
    with pytest.raises(ValueError, match="shared embedding"):
        TransformerDecoder(VOCABULARY + 1, 1, **WIDTHS, cross_attention=True, embedding=encoder.embedding)


# --- RNNEncoder --------------------------------------------------------------------------------------------------

RNN_VARIANTS = [
    dict(cell="lstm"),
    dict(cell="lstm", bidirectional=True, num_layers=2),
    dict(cell="gru", bidirectional=True),
    dict(cell="gru", num_layers=2),
    dict(cell="simple_rnn", bidirectional=True),
]


@pytest.mark.parametrize("variant", RNN_VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_rnn_encoder_final_states_are_the_last_real_tokens(variant):
    keras.utils.set_random_seed(0)
    encoder = layers.RNNEncoder(units=6, vocabulary_size=VOCABULARY, embedding_dim=5, **variant)
    lengths = [7, 4, 1]
    tokens = right_padded(lengths, 7)
    outputs, states = to_numpy(encoder(tokens))
    width = 12 if variant.get("bidirectional") else 6
    assert outputs.shape == (3, 7, width)
    num_states = 2 if variant["cell"] == "lstm" else 1  # an LSTM's hidden and cell states, else the hidden state
    assert [s.shape for s in states] == [(3, variant.get("num_layers", 1), width)] * num_states
    for row, length in enumerate(lengths):
        alone_outputs, alone_states = to_numpy(encoder(tokens[row : row + 1, :length]))
        np.testing.assert_allclose(outputs[row, :length], alone_outputs[0], atol=1e-5)
        for padded, alone in zip(states, alone_states):
            np.testing.assert_allclose(padded[row], alone[0], atol=1e-5)


def test_rnn_encoder_takes_a_given_embedding():
    embedding = keras.layers.Embedding(VOCABULARY, 5, name="pretrained")
    encoder = layers.RNNEncoder(units=6, embedding=embedding, cell="gru")
    tokens = right_padded([5, 2], 5)
    outputs, (hidden,) = encoder(tokens)
    assert encoder.embedding is embedding and hidden.shape == (2, 1, 6)
    np.testing.assert_array_equal(to_numpy(outputs._keras_mask), tokens != 0)
    for bad in (
        dict(),
        dict(vocabulary_size=VOCABULARY),
        dict(vocabulary_size=VOCABULARY, embedding_dim=5, embedding=embedding),
    ):
        with pytest.raises(ValueError, match="vocabulary_size and embedding_dim, or an embedding"):
            layers.RNNEncoder(units=6, **bad)
    with pytest.raises(ValueError, match="cell"):
        layers.RNNEncoder(units=6, vocabulary_size=VOCABULARY, embedding_dim=5, cell="transformer")


# --- .keras round trips ------------------------------------------------------------------------------------------


def as_json(config: dict) -> dict:
    """The config as a .keras file stores it (a reloaded layer's build shapes are lists, not tuples)."""
    return json.loads(json.dumps(config))


def assert_round_trip(model: keras.Model, inputs, tmp_path) -> keras.Model:
    expected = to_numpy(model(inputs, training=False))
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert type(restored) is type(model) and as_json(restored.get_config()) == as_json(model.get_config())
    for actual, wanted in zip(
        keras.tree.flatten(to_numpy(restored(inputs, training=False))), keras.tree.flatten(expected)
    ):
        np.testing.assert_array_equal(actual, wanted)
    return restored


def test_transformer_encoder_round_trip(tmp_path):
    encoder = TransformerEncoder(VOCABULARY, 2, **WIDTHS, position="learned", normalize_first=True, activation="gelu")
    assert_round_trip(encoder, right_padded([6, 3], 6), tmp_path)


@pytest.mark.parametrize("cross_attention", [False, True])
def test_transformer_decoder_round_trip(cross_attention, tmp_path):
    decoder = TransformerDecoder(
        VOCABULARY, 2, **WIDTHS, normalize_first=not cross_attention, cross_attention=cross_attention
    )
    tokens = ops.convert_to_tensor(right_padded([5, 2], 5))
    inputs = tokens
    if cross_attention:
        memory = np.random.default_rng(0).normal(size=(2, 7, 16)).astype("float32")
        inputs = {
            "token_ids": tokens,
            "memory": ops.convert_to_tensor(memory),
            "memory_padding_mask": ops.convert_to_tensor(np.arange(7)[None, :] < np.array([[7], [3]])),
        }
    restored = assert_round_trip(decoder, inputs, tmp_path)
    # The cached path uses the restored weights too.
    cache, restored_cache = decoder.init_cache(2, 8), restored.init_cache(2, 8)
    memory_args = ()
    if cross_attention:
        memory_args = (inputs["memory_padding_mask"],)
        cached = decoder.call_with_cache(tokens, cache, 0, decoder.project_memory(inputs["memory"]), *memory_args)
        again = restored.call_with_cache(
            tokens, restored_cache, 0, restored.project_memory(inputs["memory"]), *memory_args
        )
    else:
        cached, again = decoder.call_with_cache(tokens, cache, 0), restored.call_with_cache(tokens, restored_cache, 0)
    for actual, wanted in zip(keras.tree.flatten(to_numpy(again)), keras.tree.flatten(to_numpy(cached))):
        np.testing.assert_array_equal(actual, wanted)


def test_decoder_with_a_shared_embedding_round_trip(tmp_path):
    encoder = TransformerEncoder(VOCABULARY, 1, **WIDTHS)
    decoder = TransformerDecoder(VOCABULARY, 1, **WIDTHS, embedding=encoder.embedding)
    assert decoder.token_embedding is encoder.token_embedding
    assert_round_trip(decoder, right_padded([5, 2], 5), tmp_path)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_rnn_encoder_round_trip(cell, tmp_path):
    token_ids = keras.Input(shape=(None,), dtype="int32")
    outputs, states = layers.RNNEncoder(
        units=6, vocabulary_size=VOCABULARY, embedding_dim=5, cell=cell, num_layers=2, bidirectional=True
    )(token_ids)
    assert_round_trip(keras.Model(token_ids, [outputs, *states]), right_padded([6, 3], 6), tmp_path)


def test_rnn_encoder_with_a_given_embedding_round_trip(tmp_path):
    token_ids = keras.Input(shape=(None,), dtype="int32")
    encoder = layers.RNNEncoder(units=6, embedding=keras.layers.Embedding(VOCABULARY, 5), cell="gru")
    outputs, states = encoder(token_ids)
    assert_round_trip(keras.Model(token_ids, [outputs, *states]), right_padded([6, 3], 6), tmp_path)


def test_causal_lm_round_trip(tmp_path):
    model = tiny_causal_lm()
    tokens = right_padded([6, 3], 6)
    restored = assert_round_trip(model, tokens, tmp_path)
    cached = model.call_with_cache(tokens, model.init_cache(2, 8), 0)
    again = restored.call_with_cache(tokens, restored.init_cache(2, 8), 0)
    for actual, wanted in zip(keras.tree.flatten(to_numpy(again)), keras.tree.flatten(to_numpy(cached))):
        np.testing.assert_array_equal(actual, wanted)


def test_a_dtype_argument_survives_a_round_trip(tmp_path):
    for index, model in enumerate(
        [tiny_causal_lm(dtype="mixed_bfloat16"), TransformerEncoder(VOCABULARY, 1, **WIDTHS, dtype="mixed_bfloat16")]
    ):
        model.save(tmp_path / f"{index}.keras")
        restored = keras.saving.load_model(tmp_path / f"{index}.keras")
        backbone = getattr(restored, "backbone", restored)
        assert restored.dtype_policy.name == backbone.dtype_policy.name == "mixed_bfloat16"
        assert backbone.transformer_layers[0].compute_dtype == "bfloat16"


def test_summaries_name_the_parts(capsys):
    tiny_causal_lm().summary(expand_nested=True, line_length=150)
    text_classifier().summary(expand_nested=True, line_length=150)
    printed = capsys.readouterr().out
    for name in (
        "backbone",
        "TransformerDecoder",
        "decoder_layer_1",
        "output_layer_norm",
        "token_embedding",
        "TransformerEncoder",
        "encoder_layer_1",
        "classifier_head",
    ):
        assert name in printed, name
