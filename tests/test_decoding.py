"""Seq2seq greedy, beam and sampling searches against a no-cache reference and teacher-forced rescoring; empty
sources; seeded sampling in a SavedModel."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasllm.data.tokenizer import END_ID, PAD_ID, START_ID
from kerasllm.decoding import SEARCHES, beam_search, compile_search, greedy_search, length_penalty, sample
from kerasllm.models import LSTMSeq2Seq, Transformer

VOCAB = 23
MAX_LENGTH = 12
IDS = dict(start_id=START_ID, end_id=END_ID)


def _transformer():
    keras.utils.set_random_seed(3)
    model = Transformer(
        VOCAB,
        VOCAB,
        num_encoder_layers=2,
        num_decoder_layers=2,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=64,
        dropout=0.0,
        max_length=32,
    )
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
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
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
    out = greedy_search(model, source, **IDS, max_length=MAX_LENGTH, length_ratio=0.0, length_offset=MAX_LENGTH)
    tokens = np.asarray(out["tokens"])
    reference = _greedy_without_cache(model, source, MAX_LENGTH - 1)
    # Identical up to each sequence's END (after it the reference keeps PAD too, except the forced END at the cap).
    for row, ref in zip(tokens, reference):
        length = int(np.argmax(row == END_ID)) + 1 if (row == END_ID).any() else len(row)
        np.testing.assert_array_equal(row[: length - 1], ref[: length - 1])
    np.testing.assert_allclose(np.asarray(out["scores"]), _log_probs_teacher_forced(model, source, tokens), atol=1e-4)


def test_length_budget_forces_end(model):
    source = _sources()
    out = greedy_search(model, source, **IDS, max_length=MAX_LENGTH, length_ratio=0.5, length_offset=1)
    lengths = np.asarray(out["lengths"])
    budget = np.ceil(0.5 * (source != PAD_ID).sum(1)).astype(int) + 1
    assert (lengths <= budget).all(), (lengths, budget)
    tokens = np.asarray(out["tokens"])
    assert all(tokens[i, lengths[i] - 1] == END_ID for i in range(len(tokens)))


def test_beam_of_one_follows_greedys_path(model):
    """A beam of one extends greedy's choice at every step. Of its 2 candidates per step it also keeps one that ends
    with END where END was the runner-up, so (α = 0) it returns greedy's output, or an end earlier on greedy's path
    that scores higher."""
    source = _sources()
    greedy = greedy_search(model, source, **IDS, max_length=MAX_LENGTH)
    beam = beam_search(model, source, **IDS, beam_size=1, alpha=0.0, max_length=MAX_LENGTH)
    greedy_tokens, greedy_scores, greedy_lengths = (np.asarray(greedy[key]) for key in ("tokens", "scores", "lengths"))
    beam_tokens, beam_scores, beam_lengths = (np.asarray(beam[key])[:, 0] for key in ("tokens", "scores", "lengths"))
    for b, length in enumerate(beam_lengths):
        np.testing.assert_array_equal(beam_tokens[b, : length - 1], greedy_tokens[b, : length - 1])
        assert beam_tokens[b, length - 1] == END_ID and length <= greedy_lengths[b]
        if length == greedy_lengths[b]:
            np.testing.assert_array_equal(beam_tokens[b], greedy_tokens[b])
            np.testing.assert_allclose(beam_scores[b], greedy_scores[b], atol=1e-4)
        else:
            assert beam_scores[b] > greedy_scores[b]
    assert (beam_lengths == greedy_lengths).any(), "no row decodes as greedy: the comparison would be vacuous"


def test_beam_scores_are_rescored_log_probs_over_length_penalty(model):
    source = _sources()
    alpha = 0.6
    out = beam_search(model, source, **IDS, beam_size=4, alpha=alpha, num_hypotheses=3, max_length=MAX_LENGTH)
    tokens, scores, lengths = (np.asarray(out[k]) for k in ("tokens", "scores", "lengths"))
    assert tokens.shape == (3, 3, MAX_LENGTH - 1)
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "n-best must be sorted best first"
    for b in range(3):
        log_probs = _log_probs_teacher_forced(model, np.repeat(source[b : b + 1], 3, 0), tokens[b])
        expected = log_probs / np.asarray(length_penalty(lengths[b], alpha))
        np.testing.assert_allclose(scores[b], expected, atol=1e-3)
        assert all(tokens[b, j, lengths[b, j] - 1] == END_ID for j in range(3))


def test_beam_search_finds_at_least_greedys_score_with_wide_beam(model):
    source = _sources()
    greedy = np.asarray(greedy_search(model, source, **IDS, max_length=MAX_LENGTH)["scores"])
    beam = np.asarray(beam_search(model, source, **IDS, beam_size=8, alpha=0.0, max_length=MAX_LENGTH)["scores"])[:, 0]
    assert (beam >= greedy - 1e-4).all(), (beam, greedy)


def test_compiled_search_matches_eager(model):
    source = _sources()
    eager = beam_search(model, source, **IDS, beam_size=3, max_length=MAX_LENGTH)
    compiled = compile_search(beam_search, model, **IDS, beam_size=3, max_length=MAX_LENGTH)(source)
    np.testing.assert_array_equal(np.asarray(compiled["tokens"]), np.asarray(eager["tokens"]))
    np.testing.assert_allclose(np.asarray(compiled["scores"]), np.asarray(eager["scores"]), atol=1e-4)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_buffers_sized_at_run_time_decode_like_static_ones(model, search):
    """static_shapes=False (the SavedModel's graph, source length unknown until run time) allocates the batch's
    longest budget + 1 positions instead of max_length, and decodes the same tokens and scores."""
    source = _sources()  # budgets 1.0 x length + 2: 9, 7 and 5 tokens, so 10 positions instead of 30
    options = dict(**IDS, max_length=30, length_ratio=1.0, length_offset=2)
    if search == "beam":
        options.update(beam_size=3, num_hypotheses=2)
    function = {"greedy": greedy_search, "beam": beam_search}[search]
    static = function(model, source, **options)
    dynamic = tf.function(
        lambda tokens: function(model, tokens, static_shapes=False, **options),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )(source)
    static_tokens, dynamic_tokens = np.asarray(static["tokens"]), np.asarray(dynamic["tokens"])
    assert dynamic_tokens.shape[-1] == 9
    np.testing.assert_array_equal(dynamic_tokens, static_tokens[..., :9])
    assert (static_tokens[..., 9:] == PAD_ID).all()
    np.testing.assert_allclose(np.asarray(dynamic["scores"]), np.asarray(static["scores"]), atol=1e-5)


def test_run_time_buffers_are_refused_under_xla(model):
    with pytest.raises(ValueError, match="jit_compile=False"):
        compile_search(greedy_search, model, **IDS, static_shapes=False)


def test_a_one_best_search_finds_the_k_best_searchs_best(model):
    """A 1-best search may stop once nothing alive can beat its best finished hypothesis; that best must be
    the K-best search's first."""
    source = _sources()
    one = beam_search(model, source, **IDS, beam_size=4, num_hypotheses=1, max_length=MAX_LENGTH)
    four = beam_search(model, source, **IDS, beam_size=4, num_hypotheses=4, max_length=MAX_LENGTH)
    np.testing.assert_array_equal(np.asarray(one["tokens"])[:, 0], np.asarray(four["tokens"])[:, 0])
    np.testing.assert_allclose(np.asarray(one["scores"])[:, 0], np.asarray(four["scores"])[:, 0], atol=1e-6)


def test_top_k_of_one_sampling_is_greedy_and_seeded_sampling_repeats(model):
    source = _sources()
    greedy = np.asarray(greedy_search(model, source, **IDS, max_length=MAX_LENGTH)["tokens"])
    top1 = sample(model, source, **IDS, top_k=1, seed=0, max_length=MAX_LENGTH)
    np.testing.assert_array_equal(np.asarray(top1["tokens"]), greedy)
    first = sample(model, source, **IDS, seed=7, max_length=MAX_LENGTH)
    second = sample(model, source, **IDS, seed=7, max_length=MAX_LENGTH)
    np.testing.assert_array_equal(np.asarray(first["tokens"]), np.asarray(second["tokens"]))


def test_num_hypotheses_larger_than_beam_is_an_error(model):
    with pytest.raises(ValueError, match="num_hypotheses"):
        beam_search(model, _sources(), **IDS, beam_size=2, num_hypotheses=3)


def test_search_runs_on_a_mixed_precision_model_reloaded_under_float32(tmp_path):
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = _transformer()
        model((_sources(), _sources()))
        model.save(tmp_path / "model.keras")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    out = compile_search(beam_search, reloaded, **IDS, beam_size=2, max_length=MAX_LENGTH, jit_compile=False)(
        _sources()
    )
    assert np.isfinite(np.asarray(out["scores"])).all()


@pytest.mark.parametrize("in_graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_an_empty_source_gives_an_empty_output_alone_and_in_any_batch(model, search, in_graph):
    """An empty or whitespace-only input tokenizes to no token: its output is empty, with score 0 and length 0, and
    the other rows decode as they do without it; eagerly and in the SavedModel's graph (buffers sized at run time)."""
    function = {"greedy": greedy_search, "beam": beam_search}[search]
    options = dict(**IDS, max_length=MAX_LENGTH, **(dict(beam_size=3, num_hypotheses=2) if search == "beam" else {}))
    if in_graph:
        run = tf.function(
            lambda tokens: function(model, tokens, static_shapes=False, **options),
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
        )
    else:
        run = lambda tokens: function(model, tokens, **options)  # noqa: E731
    source = _sources()
    mixed = np.concatenate([source[:1], np.zeros((1, 7), "int32"), source[1:]])
    batches = [
        (np.zeros((1, 7), "int32"), [0]),
        (np.zeros((2, 7), "int32"), [0, 1]),
        (mixed, [1]),
        (np.zeros((2, 0), "int32"), [0, 1]),
    ]
    for batch, empty_rows in batches:
        out = {key: np.asarray(value) for key, value in run(batch).items()}
        assert (out["tokens"][empty_rows] == PAD_ID).all()
        assert (out["scores"][empty_rows] == 0.0).all() and (out["lengths"][empty_rows] == 0).all()
    with_empty, without = run(mixed), run(source)
    np.testing.assert_array_equal(np.asarray(with_empty["tokens"])[[0, 2, 3]], np.asarray(without["tokens"]))
    np.testing.assert_allclose(np.asarray(with_empty["scores"])[[0, 2, 3]], np.asarray(without["scores"]), atol=1e-5)


def test_seeded_sampling_from_a_run_config_repeats_in_a_saved_model(tmp_path):
    """`"decoding": {"search": "sample", ...}` as a run config holds it: a SavedModel draws the same tokens on every
    call (stateless draws, no seed variable), the ones the in-process search draws."""
    decoding = json.loads('{"search": "sample", "temperature": 0.8, "top_k": 40, "seed": 1}')
    search = SEARCHES[decoding.pop("search")]
    model = _lstm()
    source = _sources()
    model((source, source))
    module = tf.Module()
    module.model_variables = [variable.value for variable in model.variables]
    module.decode = tf.function(
        lambda tokens: search(model, tokens, **IDS, static_shapes=False, **decoding),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )
    tf.saved_model.save(module, str(tmp_path))
    served = tf.saved_model.load(str(tmp_path))
    first, second = (np.asarray(served.decode(source)["tokens"]) for _ in range(2))
    np.testing.assert_array_equal(first, second)
    in_process = np.asarray(search(model, source, **IDS, **decoding)["tokens"])
    np.testing.assert_array_equal(first, in_process[:, : first.shape[1]])
    greedy = np.asarray(greedy_search(model, source, **IDS)["tokens"])
    assert (in_process != greedy).any(), "sampling must draw, not only take the most likely token"
