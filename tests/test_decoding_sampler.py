"""Sampling with per-row options, one value per request as a serving signature takes them: clamps instead of
errors, top-k and top-p per row, draws that follow a row's own seed wherever it sits in a batch, and the same
tokens eagerly, in a plain graph, under XLA and in a SavedModel."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kerasllm.decoding import greedy_loop, sampling_loop

VOCAB = 12
MAX_LENGTH = 14
PAD_ID, END_ID = 0, 2
# The next token's logits given the current one: a bigram model with no state.
TABLE = np.random.default_rng(0).normal(size=(VOCAB, VOCAB)).astype("float32")
PROMPTS = [[1, 5, 7], [1], [1, 4], [1, 3, 3, 8]]


def _step(token_ids, index, state):
    return ops.take(TABLE, token_ids, axis=0), state


def _batch(prompts):
    tokens = np.full((len(prompts), max(map(len, prompts))), PAD_ID, "int32")
    for row, prompt in enumerate(prompts):
        tokens[row, : len(prompt)] = prompt
    return tokens, np.array([len(prompt) for prompt in prompts], "int32")


def _run(loop, prompts, **options):
    tokens, lengths = _batch(prompts)
    out = loop(
        _step,
        ops.zeros((len(prompts),)),
        tokens,
        lengths,
        np.full(len(prompts), MAX_LENGTH, "int32"),
        max_length=MAX_LENGTH,
        end_id=END_ID,
        **options,
    )
    return {key: np.asarray(value) for key, value in out.items()}


def _per_row(temperature, top_k, top_p, seed):
    return dict(
        temperature=tf.constant(temperature, tf.float32),
        top_k=tf.constant(top_k, tf.int32),
        top_p=tf.constant(top_p, tf.float32),
        seed=tf.constant(seed, tf.int32),
    )


@pytest.mark.parametrize(
    "clamped",
    [
        dict(temperature=0.0),
        dict(temperature=-2.0),
        dict(temperature=float("nan")),
        dict(temperature=1e-30),
        dict(top_k=1),
        dict(top_p=1e-9),
        dict(top_p=0.0),
        dict(top_p=-3.0),
    ],
    ids=lambda options: "{}={}".format(*next(iter(options.items()))),
)
def test_a_row_left_with_one_candidate_decodes_greedily(clamped):
    """Rows 0 and 2 get the clamped value; rows 1 and 3 sample at temperature 1.5 with no filter."""
    options = dict(temperature=[1.5] * 4, top_k=[0] * 4, top_p=[1.0] * 4, seed=[10, 11, 12, 13])
    ((name, value),) = clamped.items()
    options[name][0] = options[name][2] = value
    sampled = _run(sampling_loop, PROMPTS, **_per_row(**options))
    greedy = _run(greedy_loop, PROMPTS)
    np.testing.assert_array_equal(sampled["tokens"][[0, 2]], greedy["tokens"][[0, 2]])
    np.testing.assert_allclose(sampled["scores"][[0, 2]], greedy["scores"][[0, 2]], atol=1e-5)
    for row in (1, 3):
        assert (sampled["tokens"][row] != greedy["tokens"][row]).any(), f"row {row} must sample, not be greedy"


def test_a_huge_temperature_never_emits_padding():
    """However flat a temperature makes the distribution, padding (which marks "no token") stays impossible."""
    rows = 64
    out = _run(sampling_loop, [[1]] * rows, **_per_row([1e12] * rows, [0] * rows, [1.0] * rows, np.arange(rows)))
    for tokens, length in zip(out["tokens"], out["lengths"]):
        generated = tokens[1 : 1 + length]
        assert PAD_ID not in generated and (generated[-1] == END_ID or 1 + length == MAX_LENGTH), tokens
    assert len(np.unique(out["tokens"][:, 1])) >= VOCAB - 3, "a huge temperature must make the draws near uniform"


def test_each_row_draws_from_its_own_filtered_distribution():
    """One step of fixed logits (id 0, padding, is never drawn), the groups interleaved over the rows: each
    group's token frequencies match its tempered, top-k / top-p filtered distribution."""
    groups = [  # (temperature, top_k, top_p), expected frequencies of ids 0..4
        ((1.0, 0, 1.0), [0.0, 0.1, 0.2, 0.3, 0.4]),
        ((0.5, 0, 1.0), np.array([0, 1, 4, 9, 16]) / 30),  # p^(1/T), renormalized
        ((1.0, 2, 1.0), [0.0, 0.0, 0.0, 3 / 7, 4 / 7]),
        ((1.0, 3, 1.0), [0.0, 0.0, 2 / 9, 3 / 9, 4 / 9]),
        ((1.0, 0, 0.75), [0.0, 0.0, 2 / 9, 3 / 9, 4 / 9]),
        ((1.0, 3, 0.6), [0.0, 0.0, 0.0, 3 / 7, 4 / 7]),  # top_p over the top 3, renormalized: 4/9 + 3/9 >= 0.6
        ((0.5, 2, 1.0), [0.0, 0.0, 0.0, 9 / 25, 16 / 25]),
        ((1.0, -1, 1.7), [0.0, 0.1, 0.2, 0.3, 0.4]),  # clamped: no filter
        ((1.0, 99, 1.0), [0.0, 0.1, 0.2, 0.3, 0.4]),
    ]
    per_group = 4000
    rows = per_group * len(groups)
    group_of_row = np.arange(rows) % len(groups)
    temperature, top_k, top_p = (np.array([groups[g][0][i] for g in group_of_row]) for i in range(3))
    logits = np.log(np.array([[0.5, 0.1, 0.2, 0.3, 0.4]], "float32")).repeat(rows, 0)

    def step(token_ids, index, state):
        return ops.convert_to_tensor(logits), state

    out = sampling_loop(
        step,
        ops.zeros((rows,)),
        np.ones((rows, 1), "int32"),
        np.ones(rows, "int32"),
        np.full(rows, 2, "int32"),
        max_length=2,
        end_id=END_ID,
        **_per_row(temperature, top_k, top_p, np.arange(rows) + 1000),
    )
    tokens = np.asarray(out["tokens"])[:, 1]
    for g, (_, expected) in enumerate(groups):
        frequencies = np.bincount(tokens[group_of_row == g], minlength=5) / per_group
        np.testing.assert_allclose(frequencies, expected, atol=0.025, err_msg=f"group {groups[g][0]}")


def test_a_row_with_top_k_only_emits_its_k_most_likely_tokens():
    """Over many seeds and every step of long outputs, each token is among the k most likely after the one
    before it (padding, never emitted, excluded), and the larger ks do reach their last ranks."""
    rows = 256
    top_k = 1 + np.arange(rows) % 4
    out = _run(sampling_loop, [[1]] * rows, **_per_row([2.0] * rows, top_k, [1.0] * rows, np.arange(rows)))
    ranks = np.argsort(np.argsort(-np.where(np.arange(VOCAB) == PAD_ID, -np.inf, TABLE), axis=1), axis=1)
    tokens = out["tokens"]
    previous, current = tokens[:, :-1], tokens[:, 1:]
    generated = current != PAD_ID
    rank = ranks[previous, current]
    assert generated.sum() > 4 * rows, "outputs too short to say anything"
    assert (rank[generated] < np.broadcast_to(top_k[:, None], rank.shape)[generated]).all()
    for k in (2, 3, 4):
        assert (rank[generated & (top_k[:, None] == k)] == k - 1).any(), f"top_k={k} never drew its k-th token"


def test_a_request_samples_the_same_tokens_alone_and_anywhere_in_a_batch():
    """Row b's draws follow (seed[b], step) only: the request decodes the same alone, at rows 2 and 4 of a batch
    whose other rows have other prompts and options, and twice in one batch; another seed changes it."""
    request = dict(prompt=[1, 5, 7], options=(0.9, 5, 0.9, 42))
    others = [([1], (1.3, 0, 1.0, 42)), ([1, 4], (0.0, 3, 0.5, 7)), ([1, 3, 3, 8], (2.0, 8, 0.95, 99))]
    alone = _run(sampling_loop, [request["prompt"]], **_per_row(*([value] for value in request["options"])))
    batch = [
        others[0],
        others[1],
        (request["prompt"], request["options"]),
        others[2],
        (request["prompt"], request["options"]),
    ]
    options = [list(column) for column in zip(*(row_options for _, row_options in batch))]
    mixed = _run(sampling_loop, [prompt for prompt, _ in batch], **_per_row(*options))
    for row in (2, 4):
        np.testing.assert_array_equal(mixed["tokens"][row, :MAX_LENGTH], alone["tokens"][0])
        np.testing.assert_allclose(mixed["scores"][row], alone["scores"][0], atol=1e-5)
        np.testing.assert_array_equal(mixed["lengths"][row], alone["lengths"][0])
    reseeded = _run(sampling_loop, [request["prompt"]], **_per_row([0.9], [5], [0.9], [43]))
    assert (reseeded["tokens"] != alone["tokens"]).any(), "the seed must matter"


def test_the_same_seeds_draw_the_same_tokens_on_every_call():
    options = _per_row([1.2, 0.8, 1.0, 1.5], [0, 4, 6, 0], [1.0, 0.9, 0.8, 0.95], [1, 2, 3, 4])
    first, second = (_run(sampling_loop, PROMPTS, **options) for _ in range(2))
    np.testing.assert_array_equal(first["tokens"], second["tokens"])
    other = _run(sampling_loop, PROMPTS, **{**options, "seed": tf.constant([5, 6, 7, 8])})
    assert (other["tokens"] != first["tokens"]).any(), "the seeds must matter"


def _graph_ops(concrete) -> set[str]:
    """Op types of a traced function and of every function in its library (the while loop's body)."""
    graph_def = concrete.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types |= {node.op for node in function.node_def}
    return types


def test_per_row_sampling_decodes_alike_in_a_graph_under_xla_and_in_a_saved_model(tmp_path):
    """The serving signature's case: every input a tensor of unknown batch size. No random op of TF's (a hash
    draws) and no XLA-only op (TF Serving's stock binary runs none) in the plain graph."""
    signature = [
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.float32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.float32),
        tf.TensorSpec([None], tf.int32),
    ]

    def decode(tokens, lengths, temperature, top_k, top_p, seed):
        return sampling_loop(
            _step,
            ops.zeros(ops.shape(lengths)),
            tokens,
            lengths,
            ops.full(ops.shape(lengths), MAX_LENGTH, "int32"),
            max_length=MAX_LENGTH,
            end_id=END_ID,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )

    tokens, lengths = _batch(PROMPTS)
    options = _per_row([0.7, 0.0, 1.4, 1.0], [0, 3, 5, 1], [0.9, 1.0, 0.0, 2.0], [3, 1, 4, 1])
    inputs = (tokens, lengths, *options.values())
    eager = _run(sampling_loop, PROMPTS, **options)
    graph = tf.function(decode, input_signature=signature, jit_compile=False)
    xla = tf.function(decode, input_signature=signature, jit_compile=True)
    module = tf.Module()
    module.decode = graph
    tf.saved_model.save(module, str(tmp_path))
    served = tf.saved_model.load(str(tmp_path))
    for out in (graph(*inputs), xla(*inputs), served.decode(*inputs)):
        np.testing.assert_array_equal(np.asarray(out["tokens"]), eager["tokens"])
        np.testing.assert_allclose(np.asarray(out["scores"]), eager["scores"], atol=1e-5)
    op_types = _graph_ops(graph.get_concrete_function())
    assert "While" in op_types or "StatelessWhile" in op_types
    assert not [op for op in op_types if "Random" in op or op.startswith("Xla")], sorted(op_types)
    unseeded = tf.function(lambda t, n: _run_symbolic(t, n), input_signature=signature[:2])
    assert "RandomUniformInt" in _graph_ops(unseeded.get_concrete_function()), "the op check must see random ops"


def _run_symbolic(tokens, lengths):
    """A Python-options search with no seed: its base seed comes from TF's stateful generator."""
    return sampling_loop(
        _step,
        ops.zeros(ops.shape(lengths)),
        tokens,
        lengths,
        ops.full(ops.shape(lengths), MAX_LENGTH, "int32"),
        max_length=MAX_LENGTH,
        end_id=END_ID,
        top_k=3,
    )


def test_a_python_seed_with_per_row_options_keeps_its_per_row_index_hash():
    """An int seed hashes (seed, step, b) as in the all-Python search: identical rows draw different tokens."""
    out = _run(sampling_loop, [[1]] * 4, temperature=tf.constant([1.5] * 4), seed=5)
    assert len({tuple(row) for row in out["tokens"]}) > 1
    twice = _run(sampling_loop, [[1]] * 4, temperature=tf.constant([1.5] * 4), seed=5)
    np.testing.assert_array_equal(twice["tokens"], out["tokens"])


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(temperature=0.0, seed=1), "temperature"),
        (dict(top_k=0, seed=1), "top_k"),
        (dict(top_p=1.5, seed=1), "top_p"),
        (dict(temperature=-1.0, seed=tf.constant([1, 2, 3, 4])), "temperature"),  # Python values are still checked
        (dict(temperature=tf.constant([1.0] * 4)), "seed"),
    ],
)
def test_python_values_out_of_range_and_unseeded_per_row_searches_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        _run(sampling_loop, PROMPTS, **options)
