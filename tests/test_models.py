"""kerasllm.models: padding, causality, cached decoding (eager and in a compiled while-loop), round trips,
mixed precision, for the Transformer and every LSTMSeq2Seq variant."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kerasllm.models import LSTMSeq2Seq, Transformer

SOURCE_VOCABULARY, TARGET_VOCABULARY = 31, 37


def tiny_transformer(**overrides) -> Transformer:
    args = dict(
        source_vocabulary_size=SOURCE_VOCABULARY,
        target_vocabulary_size=TARGET_VOCABULARY,
        num_encoder_layers=2,
        num_decoder_layers=2,
        hidden_dim=16,
        num_heads=4,
        intermediate_dim=32,
        dropout=0.1,
        max_length=16,
    )
    return Transformer(**{**args, **overrides})


def tiny_lstm(**overrides) -> LSTMSeq2Seq:
    args = dict(
        source_vocabulary_size=SOURCE_VOCABULARY, target_vocabulary_size=TARGET_VOCABULARY, embedding_dim=8, units=16
    )
    return LSTMSeq2Seq(**{**args, **overrides})


MODELS = {
    "transformer-postnorm": lambda: tiny_transformer(),
    "transformer-prenorm-learned-tied": lambda: tiny_transformer(
        normalize_first=True, position="learned", tie_output_embedding=True, activation="gelu"
    ),
    "transformer-shared": lambda: tiny_transformer(
        target_vocabulary_size=SOURCE_VOCABULARY, share_embeddings=True, tie_output_embedding=True
    ),
    "lstm": lambda: tiny_lstm(),
    "lstm-luong-dot-2layers": lambda: tiny_lstm(attention="luong_dot", num_layers=2),
    "lstm-luong-general-bidirectional": lambda: tiny_lstm(attention="luong_general", bidirectional_encoder=True),
    "lstm-bahdanau-bidirectional-2layers": lambda: tiny_lstm(
        attention="bahdanau", bidirectional_encoder=True, num_layers=2
    ),
    # Two 8-unit directions make a 16-wide memory: "dot" attention works and no bridge is needed.
    "lstm-luong-dot-narrow-encoder-tied": lambda: tiny_lstm(
        attention="luong_dot", bidirectional_encoder=True, encoder_units=8, tie_output_embedding=True
    ),
}


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded source and decoder-input ids of different lengths; decoder inputs start with [START] = 2."""
    rng = np.random.default_rng(seed)
    source = rng.integers(4, SOURCE_VOCABULARY, size=(3, 7)).astype("int32")
    target = rng.integers(4, SOURCE_VOCABULARY, size=(3, 6)).astype("int32")
    target[:, 0] = 2
    for row, (source_length, target_length) in enumerate([(7, 6), (4, 3), (1, 5)]):
        source[row, source_length:] = 0
        target[row, target_length:] = 0
    return source, target


def logits(model, source, target) -> np.ndarray:
    return ops.convert_to_numpy(model((source, target), training=False))


@pytest.fixture(params=sorted(MODELS), scope="module")
def model(request):
    return MODELS[request.param]()


def test_logits_shape_dtype_and_mask(model):
    source, target = batch()
    output = model((source, target), training=False)
    assert output.shape == (3, 6, model.target_vocabulary_size)
    assert output.dtype == "float32"
    np.testing.assert_array_equal(ops.convert_to_numpy(model.compute_mask((source, target))), target != 0)


def test_appending_padding_changes_nothing(model):
    source, target = batch()
    expected = logits(model, source, target)
    padded = logits(model, np.pad(source, ((0, 0), (0, 3))), np.pad(target, ((0, 0), (0, 2))))[:, :6]
    real = target != 0
    np.testing.assert_allclose(padded[real], expected[real], atol=1e-5)


def test_later_target_tokens_do_not_change_earlier_outputs(model):
    source, target = batch()
    changed = target.copy()
    changed[:, 3:] = np.where(changed[:, 3:] == 0, 0, 5)
    np.testing.assert_allclose(logits(model, source, changed)[:, :3], logits(model, source, target)[:, :3], atol=1e-5)


def decode_with_cache(model, source, target) -> np.ndarray:
    encoder_state = model.encode(source)
    cache = model.init_cache(encoder_state, max_length=target.shape[1])
    steps = []
    for index in range(target.shape[1]):
        step_logits, new_cache = model.decode_step(
            ops.convert_to_tensor(target[:, index]), ops.convert_to_tensor(index, "int32"), cache, encoder_state
        )
        assert keras.tree.map_structure(lambda x: (x.shape, x.dtype), new_cache) == keras.tree.map_structure(
            lambda x: (x.shape, x.dtype), cache
        )
        cache = new_cache
        steps.append(ops.convert_to_numpy(step_logits))
    return np.stack(steps, axis=1)


def test_cached_decoding_matches_the_full_pass(model):
    source, target = batch()
    target[2, 5:] = 7  # no padding inside the fed prefix: every position is a real decoder input
    target[1, 3:] = 8
    np.testing.assert_allclose(decode_with_cache(model, source, target), logits(model, source, target), atol=1e-5)


def test_encoder_state_and_cache_are_batch_major(model):
    source, _ = batch()
    encoder_state = model.encode(source)
    cache = model.init_cache(encoder_state, max_length=9)
    for tensor in keras.tree.flatten((encoder_state, cache)):
        assert tensor.shape[0] == 3


def test_decode_step_in_a_compiled_while_loop(model):
    """Greedy decoding with decode_step carried by tf.while_loop under XLA gives the eager greedy tokens."""
    source, _ = batch()
    steps = 5

    def greedy(source):
        encoder_state = model.encode(source)
        cache = model.init_cache(encoder_state, max_length=steps)
        tokens = tf.fill([tf.shape(source)[0]], 2)
        outputs = tf.TensorArray(tf.int32, size=steps)

        def body(index, tokens, cache, outputs):
            step_logits, cache = model.decode_step(tokens, index, cache, encoder_state)
            # Never emit [PAD]: a pad fed back would be masked in the full pass but not in the cache.
            step_logits = tf.concat([tf.fill([tf.shape(step_logits)[0], 1], -1e9), step_logits[:, 1:]], axis=1)
            tokens = tf.argmax(step_logits, axis=-1, output_type=tf.int32)
            return index + 1, tokens, cache, outputs.write(index, tokens)

        _, _, _, outputs = tf.while_loop(
            lambda index, *_: index < steps, body, (tf.constant(0), tokens, cache, outputs)
        )
        return tf.transpose(outputs.stack())

    compiled = tf.function(greedy, jit_compile=True)(tf.constant(source)).numpy()
    np.testing.assert_array_equal(compiled, greedy(tf.constant(source)).numpy())
    # The same tokens fed as teacher-forced decoder inputs: each is the argmax of the full pass.
    decoder_inputs = np.concatenate([np.full((3, 1), 2, "int32"), compiled[:, :-1]], axis=1)
    full = logits(model, source, decoder_inputs)
    np.testing.assert_array_equal(full[:, :, 1:].argmax(-1) + 1, compiled)


@pytest.mark.parametrize(
    "name",
    ["transformer-prenorm-learned-tied", "lstm-bahdanau-bidirectional-2layers", "lstm-luong-dot-narrow-encoder-tied"],
)
def test_keras_round_trip(name, tmp_path):
    model = MODELS[name]()
    source, target = batch()
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, type(model)) and restored.get_config() == model.get_config()
    np.testing.assert_array_equal(logits(restored, source, target), logits(model, source, target))
    np.testing.assert_array_equal(decode_with_cache(restored, source, target), decode_with_cache(model, source, target))


@pytest.mark.parametrize(
    "name, width, untied_name",
    [
        ("transformer-prenorm-learned-tied", 16, "transformer-postnorm"),
        ("transformer-shared", 16, "transformer-postnorm"),
        ("lstm-luong-dot-narrow-encoder-tied", 8, "lstm-luong-general-bidirectional"),
    ],
)
def test_untied_copy_computes_the_same_logits(name, width, untied_name, tmp_path):
    model = MODELS[name]()
    source, target = batch()
    copy = model.untied()
    assert not copy.tie_output_embedding
    assert copy.output_projection.kernel.shape == (width, model.target_vocabulary_size)
    np.testing.assert_allclose(logits(copy, source, target), logits(model, source, target), atol=1e-5)
    np.testing.assert_allclose(
        decode_with_cache(copy, source, target), decode_with_cache(model, source, target), atol=1e-5
    )
    copy.save(tmp_path / "untied.keras")  # the untied LSTM's bottleneck is part of its config
    restored = keras.saving.load_model(tmp_path / "untied.keras")
    np.testing.assert_array_equal(logits(restored, source, target), logits(copy, source, target))
    untied = MODELS[untied_name]()
    assert untied.untied() is untied


def test_tied_lstm_logits_come_from_the_target_embedding():
    model = MODELS["lstm-luong-dot-narrow-encoder-tied"]()
    source, target = batch()
    assert not any(tuple(w.shape) == (16, TARGET_VOCABULARY) for w in model.weights)  # no [units x V] matrix
    assert model.bridge_hidden is None
    model.target_embedding.embeddings.assign(np.zeros(model.target_embedding.embeddings.shape, "float32"))
    assert not logits(model, source, target).any()


def test_summary_names_the_layers(capsys):
    tiny_transformer().summary(expand_nested=True)  # the backbones' layers too
    tiny_lstm(attention="bahdanau", bidirectional_encoder=True).summary()
    printed = capsys.readouterr().out
    for name in ("encoder_layer_1", "decoder_layer_0", "output_projection", "LSTMDecoder", "bridge_hidden"):
        assert name in printed
    assert "?" not in printed.split("Total params")[0]  # every layer shows its output shape


def test_invalid_arguments():
    with pytest.raises(ValueError, match="vocabulary"):
        tiny_transformer(share_embeddings=True)
    with pytest.raises(ValueError, match="luong_general"):
        tiny_lstm(attention="luong_dot", bidirectional_encoder=True)
    with pytest.raises(ValueError, match="luong_general"):
        tiny_lstm(attention="luong_dot", encoder_units=8)
    with pytest.raises(ValueError, match="attention"):
        tiny_lstm(attention="luong")
    with pytest.raises(ValueError, match="output_bottleneck"):
        tiny_lstm(tie_output_embedding=True, output_bottleneck=False)


@pytest.fixture
def mixed_policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("mixed_policy", ["mixed_float16", "mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize(
    "name",
    [
        "transformer-postnorm",
        "transformer-prenorm-learned-tied",
        "lstm-bahdanau-bidirectional-2layers",
        "lstm-luong-dot-2layers",
        "lstm-luong-dot-narrow-encoder-tied",
    ],
)
def test_mixed_precision_logits_are_float32_and_finite(mixed_policy, name):
    model = MODELS[name]()
    assert model.compute_dtype == mixed_policy.removeprefix("mixed_")
    source, target = batch()
    source[2] = 0  # an all-padding source row
    target[1] = 0  # an all-padding target row
    output = model((source, target), training=False)
    assert output.dtype == "float32" and np.isfinite(ops.convert_to_numpy(output)).all()
    encoder_state = model.encode(source)
    cache = model.init_cache(encoder_state, max_length=4)
    step_logits, new_cache = model.decode_step(
        ops.convert_to_tensor(target[:, 0]), ops.convert_to_tensor(0), cache, encoder_state
    )
    assert step_logits.dtype == "float32" and np.isfinite(ops.convert_to_numpy(step_logits)).all()
    assert [x.dtype for x in keras.tree.flatten(new_cache)] == [x.dtype for x in keras.tree.flatten(cache)]


@pytest.mark.parametrize("make_model", [tiny_transformer, tiny_lstm])
def test_a_dtype_argument_survives_a_round_trip(make_model, tmp_path):
    model = make_model(dtype="mixed_bfloat16")
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert restored.dtype_policy.name == "mixed_bfloat16"
    assert restored.decoder.compute_dtype == "bfloat16" and restored.encoder.compute_dtype == "bfloat16"


@pytest.mark.parametrize("mixed_policy", ["mixed_float16"], indirect=True)
def test_mixed_precision_jit_training_step(mixed_policy):
    model = tiny_transformer(num_encoder_layers=1, num_decoder_layers=1)  # one layer each keeps XLA compile short
    source, target = batch()
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        jit_compile=True,
    )
    history = model.fit((source, target), target, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_cross_attention_scores_are_distributions_over_real_source_tokens():
    keras.utils.set_random_seed(0)
    model = Transformer(20, 20, 1, 2, hidden_dim=16, num_heads=2, intermediate_dim=32, max_length=16)
    source = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]], "int32")
    target = np.array([[2, 5, 6], [2, 7, 0]], "int32")
    scores = np.asarray(model.cross_attention_scores(source, target))
    assert scores.shape == (2, 2, 3, 5)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    assert np.abs(scores[0, :, :, 3:]).max() < 1e-6, "padding must receive no attention"
