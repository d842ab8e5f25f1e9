"""Greedy, beam and sampling searches against a no-cache reference and teacher-forced rescoring."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest

from kerasllm.data.tokenizer import END_ID, PAD_ID, START_ID
from kerasllm.decoding import beam_search, compile_search, greedy_search, length_penalty, sample
from kerasllm.models import LSTMSeq2Seq, Transformer

VOCAB = 23
MAX_LENGTH = 12


def _transformer():
    keras.utils.set_random_seed(3)
    model = Transformer(VOCAB, VOCAB, num_encoder_layers=2, num_decoder_layers=2, d_model=32, num_heads=4, dff=64,
                        dropout=0.0, max_length=32)
    return model


def _lstm():
    keras.utils.set_random_seed(3)
    return LSTMSeq2Seq(VOCAB, VOCAB, embedding_dim=16, units=32, attention="luong_general")


MODELS = {"transformer": _transformer, "lstm": _lstm}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    model = MODELS[request.param]()
    source = _sources()
    model((source, source))  # build
    return model


def _sources():
    rng = np.random.default_rng(0)
    source = rng.integers(4, VOCAB, size=(3, 7)).astype("int32")
    source[1, 5:] = PAD_ID
    source[2, 3:] = PAD_ID
    return source


def _log_probs_teacher_forced(model, source, tokens):
    """Sum of log p(token) over tokens up to END, scoring the whole sequence in one full causal pass."""
    decoder_inputs = np.concatenate([np.full((len(tokens), 1), 2, "int32"), tokens[:, :-1]], axis=1)
    logits = np.asarray(model((source, decoder_inputs)), "float64")
    log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    picked = np.take_along_axis(log_probs, tokens[..., None], -1)[..., 0]
    return (picked * (tokens != PAD_ID)).sum(-1)


def _greedy_without_cache(model, source, max_new):
    """Re-run the whole decoder over the prefix at every step (the TF tutorial's way)."""
    prefix = np.full((len(source), 1), 2, "int32")
    finished = np.zeros(len(source), bool)
    for _ in range(max_new):
        logits = np.array(model((source, prefix)))[:, -1]
        logits[:, [PAD_ID, START_ID]] = -np.inf  # searches never emit control tokens
        next_tokens = np.where(finished, PAD_ID, logits.argmax(-1)).astype("int32")
        prefix = np.concatenate([prefix, next_tokens[:, None]], axis=1)
        finished |= next_tokens == END_ID
    return prefix[:, 1:]


def test_greedy_with_cache_equals_rerunning_the_decoder(model):
    source = _sources()
    out = greedy_search(model, source, max_length=MAX_LENGTH, length_ratio=0.0, length_offset=MAX_LENGTH)
    tokens = np.asarray(out["tokens"])
    reference = _greedy_without_cache(model, source, MAX_LENGTH - 1)
    # Identical up to each sequence's END (after it the reference keeps PAD too, except the forced END at the cap).
    for row, ref in zip(tokens, reference):
        length = int(np.argmax(row == END_ID)) + 1 if (row == END_ID).any() else len(row)
        np.testing.assert_array_equal(row[: length - 1], ref[: length - 1])
    np.testing.assert_allclose(np.asarray(out["scores"]), _log_probs_teacher_forced(model, source, tokens), atol=1e-4)


def test_length_budget_forces_end(model):
    source = _sources()
    out = greedy_search(model, source, max_length=MAX_LENGTH, length_ratio=0.5, length_offset=1)
    lengths = np.asarray(out["lengths"])
    budget = np.ceil(0.5 * (source != PAD_ID).sum(1)).astype(int) + 1
    assert (lengths <= budget).all(), (lengths, budget)
    tokens = np.asarray(out["tokens"])
    assert all(tokens[i, lengths[i] - 1] == END_ID for i in range(len(tokens)))


def test_beam_of_one_is_greedy(model):
    source = _sources()
    greedy = greedy_search(model, source, max_length=MAX_LENGTH)
    beam = beam_search(model, source, beam_size=1, alpha=0.0, max_length=MAX_LENGTH)
    np.testing.assert_array_equal(np.asarray(beam["tokens"])[:, 0], np.asarray(greedy["tokens"]))
    np.testing.assert_allclose(np.asarray(beam["scores"])[:, 0], np.asarray(greedy["scores"]), atol=1e-4)


def test_beam_scores_are_rescored_log_probs_over_length_penalty(model):
    source = _sources()
    alpha = 0.6
    out = beam_search(model, source, beam_size=4, alpha=alpha, num_hypotheses=3, max_length=MAX_LENGTH)
    tokens, scores, lengths = (np.asarray(out[k]) for k in ("tokens", "scores", "lengths"))
    assert tokens.shape == (3, 3, MAX_LENGTH - 1)
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "n-best must be sorted best first"
    for b in range(3):
        log_probs = _log_probs_teacher_forced(model, np.repeat(source[b:b + 1], 3, 0), tokens[b])
        expected = log_probs / np.asarray(length_penalty(lengths[b], alpha))
        np.testing.assert_allclose(scores[b], expected, atol=1e-3)
        assert all(tokens[b, j, lengths[b, j] - 1] == END_ID for j in range(3))


def test_beam_search_finds_at_least_greedys_score_with_wide_beam(model):
    source = _sources()
    greedy = np.asarray(greedy_search(model, source, max_length=MAX_LENGTH)["scores"])
    beam = np.asarray(beam_search(model, source, beam_size=8, alpha=0.0, max_length=MAX_LENGTH)["scores"])[:, 0]
    assert (beam >= greedy - 1e-4).all(), (beam, greedy)


def test_compiled_search_matches_eager(model):
    source = _sources()
    eager = beam_search(model, source, beam_size=3, max_length=MAX_LENGTH)
    compiled = compile_search(beam_search, model, beam_size=3, max_length=MAX_LENGTH)(source)
    np.testing.assert_array_equal(np.asarray(compiled["tokens"]), np.asarray(eager["tokens"]))
    np.testing.assert_allclose(np.asarray(compiled["scores"]), np.asarray(eager["scores"]), atol=1e-4)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_buffers_sized_at_run_time_decode_like_static_ones(model, search):
    """static_shapes=False (the SavedModel's graph, source length unknown until run time) allocates the batch's
    longest budget + 1 positions instead of max_length, and decodes the same tokens and scores."""
    import tensorflow as tf

    source = _sources()  # budgets 1.0 x length + 2: 9, 7 and 5 tokens, so 10 positions instead of 30
    options = dict(max_length=30, length_ratio=1.0, length_offset=2)
    if search == "beam":
        options.update(beam_size=3, num_hypotheses=2)
    function = {"greedy": greedy_search, "beam": beam_search}[search]
    static = function(model, source, **options)
    dynamic = tf.function(lambda tokens: function(model, tokens, static_shapes=False, **options),
                          input_signature=[tf.TensorSpec([None, None], tf.int32)])(source)
    static_tokens, dynamic_tokens = np.asarray(static["tokens"]), np.asarray(dynamic["tokens"])
    assert dynamic_tokens.shape[-1] == 9
    np.testing.assert_array_equal(dynamic_tokens, static_tokens[..., :9])
    assert (static_tokens[..., 9:] == PAD_ID).all()
    np.testing.assert_allclose(np.asarray(dynamic["scores"]), np.asarray(static["scores"]), atol=1e-5)


def test_run_time_buffers_are_refused_under_xla(model):
    with pytest.raises(ValueError, match="jit_compile=False"):
        compile_search(greedy_search, model, static_shapes=False)


def test_a_one_best_search_finds_the_k_best_searchs_best(model):
    """A 1-best search may stop once nothing alive can beat its best finished hypothesis; that best must be
    the K-best search's first."""
    source = _sources()
    one = beam_search(model, source, beam_size=4, num_hypotheses=1, max_length=MAX_LENGTH)
    four = beam_search(model, source, beam_size=4, num_hypotheses=4, max_length=MAX_LENGTH)
    np.testing.assert_array_equal(np.asarray(one["tokens"])[:, 0], np.asarray(four["tokens"])[:, 0])
    np.testing.assert_allclose(np.asarray(one["scores"])[:, 0], np.asarray(four["scores"])[:, 0], atol=1e-6)


def test_top_k_of_one_sampling_is_greedy_and_seeded_sampling_repeats(model):
    source = _sources()
    greedy = np.asarray(greedy_search(model, source, max_length=MAX_LENGTH)["tokens"])
    top1 = sample(model, source, sampler=keras_hub.samplers.TopKSampler(k=1, seed=0), max_length=MAX_LENGTH)
    np.testing.assert_array_equal(np.asarray(top1["tokens"]), greedy)
    first = sample(model, source, sampler=keras_hub.samplers.RandomSampler(seed=7), max_length=MAX_LENGTH)
    second = sample(model, source, sampler=keras_hub.samplers.RandomSampler(seed=7), max_length=MAX_LENGTH)
    np.testing.assert_array_equal(np.asarray(first["tokens"]), np.asarray(second["tokens"]))


def test_num_hypotheses_larger_than_beam_is_an_error(model):
    with pytest.raises(ValueError, match="num_hypotheses"):
        beam_search(model, _sources(), beam_size=2, num_hypotheses=3)


def test_search_runs_on_a_mixed_precision_model_reloaded_under_float32(tmp_path):
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = _transformer()
        model((_sources(), _sources()))
        model.save(tmp_path / "model.keras")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    out = compile_search(beam_search, reloaded, beam_size=2, max_length=MAX_LENGTH, jit_compile=False)(_sources())
    assert np.isfinite(np.asarray(out["scores"])).all()
