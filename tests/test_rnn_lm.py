"""The LSTM/GRU language model: shapes and masks, cached steps against the full pass, the prefill padding mask,
`.keras` round trips, and `generate` against re-running the whole prefix."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from causal_references import PROMPTS, greedy_without_cache, log_prob, right_padded
from keras import ops

from kerasllm.decoding import compile_search, generate, length_penalty
from kerasllm.tasks import RNNLM

VOCAB = 23
PAD_ID, END_ID = 0, 3
UNITS = 12


def _model(cell: str = "lstm", tie_embeddings: bool = False, seed: int = 5, **kwargs) -> RNNLM:
    keras.utils.set_random_seed(seed)
    model = RNNLM(VOCAB, cell=cell, embedding_dim=8, units=UNITS, tie_embeddings=tie_embeddings, **kwargs)
    # Keras' small default initializers give near-uniform logits; spread them so that greedy picks are clear-cut.
    for weight in model.weights:
        weight.assign(weight * 4.0)
    return model


@pytest.fixture(scope="module", params=["lstm", "gru"])
def model(request):
    return _model(request.param)


class _Recompute:
    """The causal interface without a cache of states: the cache is the token buffer, and every call re-runs the
    full pass over it (the logits at a position depend on the buffer up to there only)."""

    def __init__(self, model):
        self.model = model

    def init_cache(self, batch_size, max_length):
        return ops.zeros((batch_size, max_length), "int32")

    def call_with_cache(self, token_ids, cache, cache_update_index, padding_mask=None):
        positions = ops.arange(ops.shape(cache)[1])
        logits = []
        for t in range(token_ids.shape[1]):
            cache = ops.where(positions[None, :] == cache_update_index + t, token_ids[:, t : t + 1], cache)
            full = self.model(cache)
            at = ops.equal(positions, cache_update_index + t)[None, :, None]
            logits.append(ops.sum(ops.where(at, full, 0.0), axis=1))
        return ops.stack(logits, axis=1), cache


@pytest.mark.parametrize("cell, tie_embeddings", [("lstm", False), ("gru", True)])
def test_shapes_dtypes_mask_and_cache(cell, tie_embeddings):
    model = _model(cell, tie_embeddings)
    tokens = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]], "int32")
    logits = model(tokens)
    assert tuple(logits.shape) == (2, 5, VOCAB) and logits.dtype == "float32"
    np.testing.assert_array_equal(np.asarray(model.compute_mask(tokens)), tokens != 0)
    assert model.max_length is None
    # Padding is skipped: a padded row's real positions score as the row alone.
    np.testing.assert_allclose(np.asarray(logits)[0, :3], np.asarray(model(tokens[:1, :3]))[0], atol=1e-6)

    cache = model.init_cache(2, 16)
    kinds = ["h", "c"] if cell == "lstm" else ["h"]
    assert sorted(cache) == sorted(f"{kind}_{i}" for i in range(2) for kind in kinds)
    assert all(tuple(state.shape) == (2, UNITS) and state.dtype == "float32" for state in cache.values())
    _, new_cache = model.call_with_cache(tokens, cache, 0)
    assert sorted(new_cache) == sorted(cache)
    assert all(tuple(new_cache[key].shape) == (2, UNITS) and new_cache[key].dtype == "float32" for key in cache)
    with pytest.raises(ValueError, match="cell"):
        RNNLM(VOCAB, cell="simple_rnn")


def test_mixed_precision_keeps_float32_logits_and_compute_dtype_states():
    model = _model("lstm", tie_embeddings=True, dtype="mixed_bfloat16")
    tokens = np.array([[5, 6, 7]], "int32")
    assert model(tokens).dtype == "float32"
    cache = model.init_cache(1, 8)
    assert all(state.dtype == "bfloat16" for state in cache.values())
    logits, new_cache = model.call_with_cache(tokens, cache, 0)
    assert logits.dtype == "float32" and all(state.dtype == "bfloat16" for state in new_cache.values())


@pytest.mark.parametrize("cell, tie_embeddings", [("lstm", False), ("gru", False), ("lstm", True)])
def test_prompt_then_single_steps_equal_the_full_pass(cell, tie_embeddings):
    model = _model(cell, tie_embeddings, dropout=0.3)  # dropout is off outside training
    tokens = np.array([[5, 9, 4, 17, 8, 11, 2], [7, 6, 12, 20, 21, 5, 13]], "int32")
    logits, cache = model.call_with_cache(tokens[:, :3], model.init_cache(2, 7), 0)
    steps = [logits]
    for index in range(3, 7):
        logits, cache = model.call_with_cache(tokens[:, index : index + 1], cache, index)
        steps.append(logits)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), np.asarray(model(tokens)), atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_mask_keeps_the_state(cell):
    model = _model(cell)
    tokens = np.array([[5, 9, 4, 17, 8], [7, 6, 12, 20, 21]], "int32")
    padding_mask = np.array([[True, True, True, False, False], [True, False, True, False, True]])
    _, start = model.call_with_cache(np.array([[14], [15]], "int32"), model.init_cache(2, 8), 0)  # non-zero
    _, masked = model.call_with_cache(tokens, start, 1, padding_mask=padding_mask)
    for b in range(2):
        row_start = {key: state[b : b + 1] for key, state in start.items()}
        _, alone = model.call_with_cache(tokens[b : b + 1, padding_mask[b]], row_start, 1)
        for key in start:
            np.testing.assert_allclose(np.asarray(masked[key])[b], np.asarray(alone[key])[0], atol=1e-6)
    _, unchanged = model.call_with_cache(tokens, start, 1, padding_mask=np.zeros((2, 5), bool))
    for key in start:
        np.testing.assert_array_equal(np.asarray(unchanged[key]), np.asarray(start[key]))


@pytest.mark.parametrize("cell, tie_embeddings", [("lstm", True), ("gru", False)])
def test_keras_round_trip_gives_identical_logits(tmp_path, cell, tie_embeddings):
    model = _model(cell, tie_embeddings)
    tokens = np.array([[5, 9, 4, 0], [7, 6, 12, 20]], "int32")
    path = str(tmp_path / "rnn_lm.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, RNNLM) and restored.get_config() == model.get_config()
    np.testing.assert_array_equal(np.asarray(restored(tokens)), np.asarray(model(tokens)))
    cached = model.call_with_cache(tokens, model.init_cache(2, 4), 0)[0]
    again = restored.call_with_cache(tokens, restored.init_cache(2, 4), 0)[0]
    np.testing.assert_array_equal(np.asarray(again), np.asarray(cached))


def test_greedy_generate_on_ragged_prompts_equals_rerunning_the_full_pass(model):
    """The prefill stops at the shortest prompt's last token (the padding mask): a longer prompt's later tokens
    are fed by the loop, once, so each row decodes as greedy search over the full pass would."""
    tokens, lengths = right_padded()
    out = generate(model, tokens, lengths, max_new_tokens=8, end_id=END_ID, search="greedy")
    assert np.asarray(out["tokens"]).shape == (3, 8)
    rows = [list(row[:size]) for row, size in zip(np.asarray(out["tokens"]), np.asarray(out["lengths"]))]
    assert max(map(len, rows)) > 2, "too short to compare"
    for prompt, generated, score in zip(PROMPTS, rows, np.asarray(out["scores"])):
        assert generated == greedy_without_cache(model, prompt, 8)
        np.testing.assert_allclose(score, log_prob(model, prompt, generated), atol=1e-4)


def test_beam_search_reorders_the_states_and_decodes_each_row_as_alone(model):
    """Each hypothesis's score is its log-probability under the full pass over lp(length), so the states followed
    their beams; and each row of the ragged batch decodes as it would alone (prefilled to its own last token)."""
    tokens, lengths = right_padded()
    options = dict(max_new_tokens=6, end_id=END_ID, search="beam", beam_size=3, num_hypotheses=2, alpha=0.6)
    batch = generate(model, tokens, lengths, **options)
    hypotheses, scores, sizes = (np.asarray(batch[key]) for key in ("tokens", "scores", "lengths"))
    for b, prompt in enumerate(PROMPTS):
        for j in range(2):
            generated = hypotheses[b, j, : sizes[b, j]]
            expected = log_prob(model, prompt, generated) / float(length_penalty(sizes[b, j], 0.6))
            np.testing.assert_allclose(scores[b, j], expected, atol=1e-3)
        alone = generate(model, np.array([prompt], "int32"), None, **options)
        np.testing.assert_array_equal(hypotheses[b], np.asarray(alone["tokens"])[0])
        np.testing.assert_allclose(scores[b], np.asarray(alone["scores"])[0], atol=1e-5)


def test_seeded_sampling_repeats_and_matches_the_recomputed_pass(model):
    tokens, lengths = right_padded()
    options = dict(max_new_tokens=8, end_id=END_ID, search="sample", top_k=5)
    first = generate(model, tokens, lengths, seed=1, **options)
    second = generate(model, tokens, lengths, seed=1, **options)
    reference = generate(_Recompute(model), tokens, lengths, seed=1, **options)
    for out in (second, reference):
        np.testing.assert_array_equal(np.asarray(out["tokens"]), np.asarray(first["tokens"]))
        np.testing.assert_allclose(np.asarray(out["scores"]), np.asarray(first["scores"]), atol=1e-4)
    other = generate(model, tokens, lengths, seed=2, **options)
    assert (np.asarray(other["tokens"]) != np.asarray(first["tokens"])).any(), "the seed must matter"


def test_xla_compiled_generate_equals_eager():
    model = _model("lstm")
    tokens, lengths = right_padded()
    eager = generate(model, tokens, lengths, max_new_tokens=6, end_id=END_ID)
    xla = compile_search(generate, model, jit_compile=True, max_new_tokens=6, end_id=END_ID)(tokens, lengths)
    np.testing.assert_array_equal(np.asarray(xla["tokens"]), np.asarray(eager["tokens"]))
    np.testing.assert_allclose(np.asarray(xla["scores"]), np.asarray(eager["scores"]), atol=1e-4)


def test_run_time_shapes_and_an_empty_batch_decode():
    """A serving graph's shapes are known at run time only, and an empty request has no column: a zero-step call
    leaves the states as they are, and `generate` answers an empty batch."""
    model = _model("gru")
    _, cache = model.call_with_cache(np.array([[5, 6]], "int32"), model.init_cache(1, 4), 0)
    logits, unchanged = model.call_with_cache(np.zeros((1, 0), "int32"), cache, 2)
    assert tuple(logits.shape) == (1, 0, VOCAB)
    for key in cache:
        np.testing.assert_array_equal(np.asarray(unchanged[key]), np.asarray(cache[key]))

    options = dict(max_new_tokens=6, end_id=END_ID, static_shapes=False)
    run = tf.function(
        lambda tokens, lengths: generate(model, tokens, lengths, **options),
        input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)],
    )
    tokens, lengths = right_padded()
    eager = generate(model, tokens, lengths, **options)
    np.testing.assert_array_equal(np.asarray(run(tokens, lengths)["tokens"]), np.asarray(eager["tokens"]))
    empty = run(np.zeros((0, 0), "int32"), np.zeros((0,), "int32"))
    assert tuple(empty["tokens"].shape) == (0, 6) and tuple(empty["scores"].shape) == (0,)
