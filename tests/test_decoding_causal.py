"""Causal-LM generation: one prefill pass plus cached steps against re-running the full causal pass, prompt forcing,
ragged prompts, budgets, stateless sampling and prompt-length buckets."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from causal_references import PROMPTS, greedy_without_cache, log_prob, right_padded
from keras import ops

from kerasllm.decoding import compile_search, generate, length_penalty, sampling_loop
from kerasllm.layers import MultiHeadAttention, TokenAndPositionEmbedding

VOCAB = 23
PAD_ID, END_ID = 0, 3
MAX_LENGTH = 32


class TinyCausalLM(keras.Model):
    """Test-only causal LM with the decoding interface of `kerasllm.tasks.CausalLM`: token and learned position
    embeddings, post-norm causal self-attention blocks with a key/value cache, a float32 output projection.

    `cache_inits` counts `init_cache` calls, i.e. traces of a compiled search.
    """

    def __init__(
        self,
        vocabulary_size: int,
        hidden_dim: int = 32,
        num_heads: int = 4,
        num_layers: int = 2,
        max_length: int = MAX_LENGTH,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads, self.head_dim = num_heads, hidden_dim // num_heads
        self.embedding = TokenAndPositionEmbedding(vocabulary_size, max_length, hidden_dim, position="learned")
        self.attention_layers = [MultiHeadAttention(num_heads, name=f"attention_{i}") for i in range(num_layers)]
        self.norms = [keras.layers.LayerNormalization(name=f"norm_{i}") for i in range(num_layers)]
        self.output_projection = keras.layers.Dense(vocabulary_size, dtype="float32", name="output_projection")
        self.cache_inits = 0

    def call(self, token_ids):
        hidden = self.embedding(token_ids)
        for attention, norm in zip(self.attention_layers, self.norms):
            hidden = norm(hidden + attention(hidden, use_causal_mask=True))
        return self.output_projection(hidden)

    def init_cache(self, batch_size, max_length):
        self.cache_inits += 1
        shape = (batch_size, max_length, self.num_heads, self.head_dim)
        return tuple((ops.zeros(shape), ops.zeros(shape)) for _ in self.attention_layers)

    def call_with_cache(self, token_ids, cache, cache_update_index, padding_mask=None):
        # padding_mask is ignored, as in CausalLM: the loop rewrites every slot the prefill should not have filled.
        hidden = self.embedding(token_ids, start_index=cache_update_index)
        new_cache = []
        for attention, norm, layer_cache in zip(self.attention_layers, self.norms, cache):
            attended, layer_cache = attention(
                hidden, use_causal_mask=True, cache=layer_cache, cache_update_index=cache_update_index
            )
            hidden = norm(hidden + attended)
            new_cache.append(layer_cache)
        return self.output_projection(hidden), tuple(new_cache)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(5)
    model = TinyCausalLM(VOCAB)
    model(np.ones((1, 4), "int32"))  # build
    return model


def _rows(out, beam: bool):
    """[(tokens up to the length, score)] for each row (the best hypothesis of a beam search)."""
    tokens, scores, lengths = (np.asarray(out[key]) for key in ("tokens", "scores", "lengths"))
    if beam:
        tokens, scores, lengths = tokens[:, 0], scores[:, 0], lengths[:, 0]
    return [(list(row[:n]), score) for row, score, n in zip(tokens, scores, lengths)]


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_prefill_and_cached_steps_equal_rerunning_the_full_pass(model, search):
    tokens, lengths = right_padded()
    options = dict(beam_size=1, alpha=0.0) if search == "beam" else {}
    out = generate(model, tokens, lengths, max_new_tokens=8, end_id=END_ID, search=search, **options)
    assert np.asarray(out["tokens"]).shape[-1] == 8
    for prompt, (generated, score) in zip(PROMPTS, _rows(out, search == "beam")):
        assert generated == greedy_without_cache(model, prompt, 8)
        np.testing.assert_allclose(score, log_prob(model, prompt, generated), atol=1e-4)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_ragged_prompts_decode_as_each_prompt_alone(model, search):
    """The batch starts at the shortest prompt's end; longer prompts are forced meanwhile (a beam does not branch
    inside them), so each row decodes as it would alone."""
    tokens, lengths = right_padded()
    options = dict(beam_size=3, num_hypotheses=2) if search == "beam" else {}
    batch = generate(model, tokens, lengths, max_new_tokens=8, end_id=END_ID, search=search, **options)
    for index, prompt in enumerate(PROMPTS):
        alone = generate(
            model, np.array([prompt], "int32"), None, max_new_tokens=8, end_id=END_ID, search=search, **options
        )
        for key in ("tokens", "lengths"):
            np.testing.assert_array_equal(np.asarray(batch[key])[index], np.asarray(alone[key])[0])
        np.testing.assert_allclose(np.asarray(batch["scores"])[index], np.asarray(alone["scores"])[0], atol=1e-5)


def test_greedy_from_a_longer_prompt_continues_the_shorter_prompts_greedy_run(model):
    prompt = PROMPTS[1]
    first = _rows(generate(model, np.array([prompt], "int32"), max_new_tokens=10, end_id=END_ID), False)[0][0]
    assert len(first) == 10, "an early END would leave too little to compare"
    longer = prompt + first[:4]
    second = _rows(generate(model, np.array([longer], "int32"), max_new_tokens=6, end_id=END_ID), False)[0][0]
    assert second == first[4:]


def test_beam_scores_are_log_probs_over_the_length_penalty(model):
    tokens, lengths = right_padded()
    alpha = 0.6
    out = generate(
        model,
        tokens,
        lengths,
        max_new_tokens=6,
        end_id=END_ID,
        search="beam",
        beam_size=4,
        num_hypotheses=3,
        alpha=alpha,
    )
    hypotheses, scores, sizes = (np.asarray(out[key]) for key in ("tokens", "scores", "lengths"))
    assert hypotheses.shape == (3, 3, 6)
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "n-best must be sorted best first"
    for b, prompt in enumerate(PROMPTS):
        for j in range(3):
            generated = hypotheses[b, j, : sizes[b, j]]
            assert (hypotheses[b, j, sizes[b, j] :] == PAD_ID).all() and PAD_ID not in generated
            expected = log_prob(model, prompt, generated) / float(length_penalty(sizes[b, j], alpha))
            np.testing.assert_allclose(scores[b, j], expected, atol=1e-3)


def test_generation_stops_at_the_end_token(model):
    tokens, lengths = right_padded()
    free = _rows(generate(model, tokens, lengths, max_new_tokens=8, end_id=END_ID), False)
    row = free[0][0]
    stop = next(i for i in range(1, len(row)) if row[i] not in row[:i])  # the first new token after the first
    out = generate(model, tokens, lengths, max_new_tokens=8, end_id=row[stop])
    for (generated, _), (stopped, _) in zip(free, _rows(out, False)):
        end = generated.index(row[stop]) + 1 if row[stop] in generated else len(generated)
        assert stopped == generated[:end]
    assert _rows(out, False)[0][0] == row[: stop + 1]


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_budget_is_max_new_tokens_within_max_length(model, search):
    tokens, lengths = right_padded()
    options = dict(beam_size=2) if search == "beam" else {}
    unbounded = _rows(
        generate(model, tokens, lengths, max_new_tokens=5, end_id=END_ID, search=search, **options), search == "beam"
    )
    # max_length 8 leaves the 6-token prompt 2 new tokens, the others 5; a 9-token prompt gets none.
    bounded = _rows(
        generate(model, tokens, lengths, max_new_tokens=5, end_id=END_ID, search=search, max_length=8, **options),
        search == "beam",
    )
    budgets = np.minimum(5, 8 - lengths)
    assert all(len(row) <= 5 for row, _ in unbounded)
    assert all(len(row) <= budget for (row, _), budget in zip(bounded, budgets))
    if search == "greedy":  # a beam's best within fewer tokens need not be a prefix of its best within more
        assert [len(row) for row, _ in unbounded] == [5, 5, 5], "no END within the budget: each row stops at it"
        assert [row for row, _ in bounded] == [row[:budget] for (row, _), budget in zip(unbounded, budgets)]
    too_long = generate(
        model,
        np.arange(4, 13, dtype="int32")[None],
        max_new_tokens=5,
        end_id=END_ID,
        search=search,
        max_length=8,
        **options,
    )
    assert int(np.asarray(too_long["lengths"]).max()) == 0 and float(np.asarray(too_long["scores"]).max()) == 0.0


def test_seeded_sampling_repeats_and_top_k_of_one_is_greedy(model):
    tokens, lengths = right_padded()
    greedy = generate(model, tokens, lengths, max_new_tokens=8, end_id=END_ID)
    top1 = generate(model, tokens, lengths, max_new_tokens=8, end_id=END_ID, search="sample", top_k=1, seed=3)
    np.testing.assert_array_equal(np.asarray(top1["tokens"]), np.asarray(greedy["tokens"]))
    np.testing.assert_allclose(np.asarray(top1["scores"]), np.asarray(greedy["scores"]), atol=1e-5)

    options = dict(max_new_tokens=8, end_id=END_ID, search="sample", temperature=1.5, top_p=0.95)
    compiled = compile_search(generate, model, jit_compile=True, seed=7, **options)
    first, second = compiled(tokens, lengths), compiled(tokens, lengths)
    eager = generate(model, tokens, lengths, seed=7, **options)  # draws as XLA does: a hash, not TF's kernels
    for out in (second, eager):
        np.testing.assert_array_equal(np.asarray(out["tokens"]), np.asarray(first["tokens"]))
    other = generate(model, tokens, lengths, seed=8, **options)
    assert (np.asarray(other["tokens"]) != np.asarray(first["tokens"])).any(), "the seed must matter"
    for prompt, (generated, score) in zip(PROMPTS, _rows(first, False)):
        np.testing.assert_allclose(score, log_prob(model, prompt, generated), atol=1e-4)


@pytest.mark.parametrize(
    "options, expected",
    [
        (dict(), [0.0, 0.1, 0.2, 0.3, 0.4]),
        (dict(temperature=0.5), np.array([0, 1, 4, 9, 16]) / 30),  # p^(1/T), renormalized
        (dict(top_k=2), [0.0, 0.0, 0.0, 3 / 7, 4 / 7]),
        (dict(top_p=0.6), [0.0, 0.0, 0.0, 3 / 7, 4 / 7]),  # 0.4 + 0.3 is the smallest prefix holding 0.6
        (dict(top_p=0.75), [0.0, 0.0, 2 / 9, 3 / 9, 4 / 9]),
    ],
)
def test_sampling_draws_from_the_filtered_distribution(options, expected):
    """One step of 20000 rows from fixed logits (id 0, padding, is never drawn): token frequencies match the
    tempered, top-k / top-p filtered distribution, and a second call draws the same tokens."""
    rows = 20000
    logits = np.log(np.array([[0.5, 0.1, 0.2, 0.3, 0.4]], "float32")).repeat(rows, 0)

    def step(token_ids, index, state):
        return ops.convert_to_tensor(logits), state

    def draw():
        prompt = np.full((rows, 1), 1, "int32")
        out = sampling_loop(
            step,
            ops.zeros((rows,)),
            prompt,
            np.ones(rows, "int32"),
            np.full(rows, 2, "int32"),
            max_length=2,
            end_id=END_ID,
            seed=11,
            **options,
        )
        return np.asarray(out["tokens"])[:, 1]

    tokens = draw()
    frequencies = np.bincount(tokens, minlength=5) / rows
    np.testing.assert_allclose(frequencies, expected, atol=0.015)
    np.testing.assert_array_equal(draw(), tokens)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_xla_and_run_time_buffers_decode_like_eager(model, search):
    tokens, lengths = right_padded()
    options = dict(max_new_tokens=6, end_id=END_ID, search=search, max_length=MAX_LENGTH)
    if search == "beam":
        options.update(beam_size=3, num_hypotheses=2)
    eager = generate(model, tokens, lengths, **options)
    xla = compile_search(generate, model, jit_compile=True, **options)(tokens, lengths)
    dynamic = tf.function(
        lambda t, n: generate(model, t, n, static_shapes=False, **options),
        input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)],
    )
    for out in (xla, dynamic(tokens, lengths)):
        np.testing.assert_array_equal(np.asarray(out["tokens"]), np.asarray(eager["tokens"]))
        np.testing.assert_allclose(np.asarray(out["scores"]), np.asarray(eager["scores"]), atol=1e-4)


def test_a_new_prompt_length_does_not_retrace(model):
    compiled = compile_search(generate, model, jit_compile=False, max_new_tokens=4, end_id=END_ID)
    batches = [right_padded(rows) for rows in (PROMPTS[1:], [PROMPTS[2], [9, 9, 4]], [[4], [5, 6, 7, 8, 9]])]
    traces = model.cache_inits
    outputs = [compiled(tokens, lengths) for tokens, lengths in batches]  # widths 4, 4, 5: one bucket of 8
    assert model.cache_inits == traces + 1
    compiled(*right_padded([list(range(4, 13)), [5]]))  # width 9: the next bucket
    assert model.cache_inits == traces + 2
    for (tokens, lengths), out in zip(batches, outputs):
        eager = generate(model, tokens, lengths, max_new_tokens=4, end_id=END_ID)
        np.testing.assert_array_equal(np.asarray(out["tokens"]), np.asarray(eager["tokens"]))


def test_the_gpt_causal_lm_generates_what_the_full_causal_pass_predicts():
    """The same check on `kerasllm.tasks.CausalLM` (the GPT built from TransformerDecoderLayers without memory):
    the prompt prefilled in one pass, then cached steps, greedy, equals re-running the whole prefix each step."""
    from kerasllm.tasks import CausalLM

    keras.utils.set_random_seed(7)
    gpt = CausalLM(
        VOCAB, num_layers=2, hidden_dim=32, num_heads=4, intermediate_dim=64, dropout=0.0, max_length=MAX_LENGTH
    )
    tokens, lengths = right_padded()
    for jit_compile in (False, True):
        run = compile_search(generate, gpt, jit_compile=jit_compile, max_new_tokens=8, end_id=END_ID)
        out = run(tokens, lengths)
        for prompt, (generated, score) in zip(PROMPTS, _rows(out, False)):
            assert generated == greedy_without_cache(gpt, prompt, 8)
            np.testing.assert_allclose(score, log_prob(gpt, prompt, generated), atol=1e-4)
