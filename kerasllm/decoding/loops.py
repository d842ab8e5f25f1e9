"""Autoregressive decoding loops over a step function: greedy, sampling and beam search.

A loop knows nothing about the model. It drives one function,

    logits, state = step(token_ids, index, state)

which feeds `token_ids` [B] (int32, the tokens at position `index`) and returns the float32 logits [B, V] of
position `index + 1` and the next state (a pytree of batch-major tensors: a key/value cache, a recurrent state).
The seq2seq adapters (`kerasllm.decoding.seq2seq`) and the causal LM adapter (`kerasllm.decoding.causal`) build
that function from a model; tests may write one by hand.

Every row starts from its prompt: `prompt_tokens` [B, P], right-padded, with `prompt_lengths` [B] real tokens
(at least one: a seq2seq decoder's [START], a language model's prompt). The loop starts at position
`min(prompt_lengths) - 1`, so the state must already hold every earlier position (a prefilled cache); while a row
is still inside its prompt its next token is the prompt's (in beam search the forced token has log-probability 0
and every other extension is impossible, so beams do not branch inside a prompt), and scores count generated
tokens only. `limits` [B] caps each row's sequence length, prompt included: the last position a row may fill is
`limits - 1`, and a row whose prompt already fills its limit generates nothing (empty output, score 0).

Each search is one `keras.ops.while_loop` that stops as soon as every row has finished, so it compiles into a
single XLA program or runs as a plain TF graph in a SavedModel. The token buffers hold `max_length` positions: a
Python int for XLA's static shapes, or a scalar tensor known at run time in a plain TF graph (the SavedModel sizes
them to the batch's budget). Buffer columns are written with a `where` blend rather than `keras.ops.slice_update`:
on TensorFlow the latter is `XlaDynamicUpdateSlice`, which the stock TF Serving binary cannot run.

Why our own loops rather than keras-hub's samplers' `__call__`: those decode a prompt buffer with a
`next(prompt, cache, index)` of their own, and have no per-row length limit, no forced end token and (BeamSampler)
no length penalty, finished list or n-best.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# Scores of impossible hypotheses: finite, so that sums and differences never make NaN.
_NEG = -1.0e9

Step = Callable[[Any, Any, Any], tuple[Any, Any]]
# A sampling option given one value per row: a [B] tensor or array (a serving signature's per-request values).
PerRow = Any


def length_penalty(length: Any, alpha: float) -> Any:
    """GNMT length penalty lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, eq. 14)."""
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


def _column(buffer, index, positions):
    """buffer[..., index] for a traced scalar index (no XLA-only gather); `positions` is arange(L)."""
    return ops.sum(ops.where(ops.equal(positions, index), buffer, ops.zeros_like(buffer)), axis=-1)


def _write_column(buffer, index, values, positions):
    """buffer[..., index] = values, for a buffer [..., L] and values [...]."""
    return ops.where(ops.equal(positions, index), ops.expand_dims(values, -1), buffer)


def _prompt_buffer(prompt_tokens, prompt_lengths, positions, pad_id: int):
    """The [B, L] token buffer: each row's prompt, then `pad_id` (whatever P is against L)."""
    columns = ops.minimum(positions, ops.shape(prompt_tokens)[1] - 1)
    tokens = ops.take(prompt_tokens, columns, axis=1)
    return ops.where(positions[None, :] < prompt_lengths[:, None], tokens, pad_id)


def next_token_log_probs(logits, pad_id: int, suppressed_ids: Sequence[int] = ()):
    """The float32 log-probabilities every search reads from a step's logits [..., V]: the model's own log p(y),
    with `pad_id` (it marks "no token" in the buffers and, fed back, would be attended as a real key) and
    `suppressed_ids` made impossible. The suppressed mass is not renormalized away.

    Example:
        >>> next_token_log_probs(np.zeros((1, 4), "float32"), pad_id=0)  # [[-1e9, log 1/4, log 1/4, log 1/4]]
    """
    suppressed = np.zeros(logits.shape[-1], bool)
    suppressed[[pad_id, *suppressed_ids]] = True
    return ops.where(suppressed, _NEG, ops.log_softmax(ops.cast(logits, "float32"), axis=-1))


def _prepare(prompt_tokens, prompt_lengths, limits, max_length):
    prompt_tokens = ops.cast(prompt_tokens, "int32")
    prompt_lengths = ops.cast(prompt_lengths, "int32")
    limits = ops.cast(limits, "int32")
    positions = ops.arange(max_length, dtype="int32")
    # `initial` covers an empty batch (a SavedModel called with no text): the loop then runs no step.
    start = ops.min(prompt_lengths, initial=max_length) - 1
    return prompt_tokens, prompt_lengths, limits, positions, start


def _token_loop(
    choose: Callable[[Any, Any], Any],
    step: Step,
    state: Any,
    prompt_tokens,
    prompt_lengths,
    limits,
    *,
    max_length: Any,
    end_id: int,
    pad_id: int,
    suppressed_ids: Sequence[int],
    end_at_limit: bool,
) -> dict[str, Any]:
    """The loop of greedy search and sampling: one token per row per step, `choose(log_probs, index)`."""
    prompt_tokens, prompt_lengths, limits, positions, start = _prepare(
        prompt_tokens, prompt_lengths, limits, max_length
    )
    batch_size = ops.shape(prompt_tokens)[0]
    tokens = _prompt_buffer(prompt_tokens, prompt_lengths, positions, pad_id)
    last_positions = limits - 1
    finished = prompt_lengths >= limits
    scores = ops.zeros((batch_size,), "float32")
    # A one-column prompt ends where the loop starts (the seq2seq [START]): no step is ever inside it, so the
    # forcing ops stay out of the graph.
    forcing = prompt_tokens.shape[1] != 1

    def cond(index, tokens, state, finished, scores):
        return ops.logical_and(index < max_length - 1, ops.logical_not(ops.all(finished)))

    def body(index, tokens, state, finished, scores):
        logits, state = step(_column(tokens, index, positions), index, state)
        vocabulary_size = logits.shape[-1]
        log_probs = next_token_log_probs(logits, pad_id, suppressed_ids)
        next_tokens = ops.cast(choose(log_probs, index), "int32")
        position = index + 1
        at_limit = position >= last_positions
        if end_at_limit:
            next_tokens = ops.where(at_limit, end_id, next_tokens)
        # Rows inside their prompt keep the prompt's token, already in the buffer; finished rows keep pad_id.
        generating = ops.logical_not(ops.logical_or(finished, position < prompt_lengths) if forcing else finished)
        is_next = ops.equal(np.arange(vocabulary_size, dtype="int32"), ops.expand_dims(next_tokens, -1))
        chosen = ops.sum(ops.where(is_next, log_probs, 0.0), axis=-1)
        scores = scores + ops.where(generating, chosen, 0.0)
        written = ops.logical_and(ops.equal(positions, position)[None, :], generating[:, None])
        tokens = ops.where(written, next_tokens[:, None], tokens)
        stops = ops.logical_or(ops.equal(next_tokens, end_id), at_limit)
        finished = ops.logical_or(finished, ops.logical_and(generating, stops))
        return position, tokens, state, finished, scores

    _, tokens, _, _, scores = ops.while_loop(
        cond, body, (start, tokens, state, finished, scores), maximum_iterations=max_length - 1
    )
    lengths = ops.sum(ops.cast(ops.not_equal(tokens, pad_id), "int32"), axis=-1) - prompt_lengths
    return {"tokens": tokens, "scores": scores, "lengths": lengths}


def greedy_loop(
    step: Step,
    state: Any,
    prompt_tokens: Any,
    prompt_lengths: Any,
    limits: Any,
    *,
    max_length: Any,
    end_id: int,
    pad_id: int = 0,
    suppressed_ids: Sequence[int] = (),
    end_at_limit: bool = False,
) -> dict[str, Any]:
    """Pick the most likely token at every step.

    Args:
        step: `step(token_ids [B], index, state) -> (logits [B, V] float32, new_state)`.
        state: the step's initial state, a pytree of batch-major tensors holding every position before
            `min(prompt_lengths) - 1` (a prefilled cache, a recurrent state).
        prompt_tokens: [B, P] int, right-padded prompts.
        prompt_lengths: [B] int, real tokens of each prompt (at least 1).
        limits: [B] int, each row's cap on its sequence length, prompt included (at most `max_length`).
        max_length: positions of the token buffer: a Python int (static shapes, XLA) or a scalar int tensor.
        end_id: the token that ends a sequence.
        pad_id: fills the buffer after each sequence; never emitted.
        suppressed_ids: other ids never emitted (a seq2seq decoder's [START]).
        end_at_limit: the last position a row's limit allows holds `end_id` (the seq2seq rule: every output
            ends with END); otherwise a row simply stops there.

    Returns:
        dict with `tokens` [B, max_length] (each row's prompt, its generated tokens with the end token when one
        was emitted, then `pad_id`), `scores` [B] (the sum of the generated tokens' log-probabilities) and
        `lengths` [B] (generated tokens; 0 for a row that could generate nothing).

    Example:
    >>> # out = greedy_loop(step, cache, prompts, prompt_lengths, prompt_lengths + 16, max_length=64, end_id=3)
    """
    return _token_loop(
        lambda log_probs, index: ops.argmax(log_probs, axis=-1),
        step,
        state,
        prompt_tokens,
        prompt_lengths,
        limits,
        max_length=max_length,
        end_id=end_id,
        pad_id=pad_id,
        suppressed_ids=suppressed_ids,
        end_at_limit=end_at_limit,
    )


def _mix(x):
    """lowbias32 (C. Wellons' hash prospector): a bijection of uint32 in which every output bit depends on every
    input bit."""
    x = ops.bitwise_xor(x, ops.right_shift(x, 16)) * np.uint32(0x7FEB352D)
    x = ops.bitwise_xor(x, ops.right_shift(x, 15)) * np.uint32(0x846CA68B)
    return ops.bitwise_xor(x, ops.right_shift(x, 16))


def _uniform(seed, index, offsets):
    """[B, 1] float32 in [0, 1): an integer function of (seed, index, offset) only, `seed` and `offsets` broadcast
    to [B]. One seed with offsets arange(B) gives every row its own stream; per-row seeds with offset 0 give a row
    the same stream wherever it sits in a batch."""
    key = _mix(_mix(ops.cast(seed, "uint32")) + ops.cast(index, "uint32"))
    bits = _mix(ops.cast(offsets, "uint32") + key)
    return ops.cast(ops.right_shift(bits, 8), "float32")[:, None] * 2.0**-24


def _draw(logits, uniform):
    """One index per row of `logits` [B, C] by inverse CDF: the first whose cumulative probability exceeds
    `uniform` [B, 1] (an impossible index adds no mass, so it is never drawn)."""
    if logits.shape[-1] == 1:  # one candidate (top_k=1): nothing to draw
        return ops.zeros(ops.shape(logits)[:1], "int32")
    cumulative = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
    below = ops.sum(ops.cast(cumulative <= uniform * cumulative[:, -1:], "int32"), axis=-1)
    return ops.minimum(below, logits.shape[-1] - 1)


def _nucleus(values, top_p):
    """`values` [B, C], sorted best first, with every candidate after the smallest prefix holding probability
    `top_p` (a number, or [B, 1]) made impossible."""
    probabilities = ops.softmax(values, axis=-1)
    mass_before = ops.cumsum(probabilities, axis=-1) - probabilities
    return ops.where(mass_before < top_p, values, _NEG)


def _per_row(value: Any) -> bool:
    """Whether a sampling option holds one value per row (a tensor or array) rather than one Python number."""
    return value is not None and not isinstance(value, (int, float, np.generic))


def _rows(value, batch_size, dtype: str):
    """A sampling option as a [B] tensor, one value per row."""
    return ops.broadcast_to(ops.cast(value, dtype), (batch_size,))


def sampler(
    temperature: float | PerRow, top_k: int | None | PerRow, top_p: float | None | PerRow, seed: int | None | PerRow
):
    """`choose(log_probs, index)` drawing from the tempered, top-k / top-p filtered distribution.

    Stateless: row b's draw at step i is a hash of (seed, i, b), or of (seed[b], i) for per-row seeds, so a seeded
    search draws the same tokens on every call, eagerly, in a tf.function, under XLA and in a SavedModel, and needs
    no variable (keras-hub's samplers keep a `SeedGenerator` variable, which a traced serving graph would have to
    track and which advances between calls). Not TF's `stateless_categorical`: its XLA kernel draws another stream
    than its graph kernel, so the XLA-compiled in-process search and the SavedModel would disagree for one seed.
    Without a seed, each call draws its base seed once, outside the loop, from TF's stateful generator.

    Python values are checked here; as soon as one option is per row, every row gets its own options and
    out-of-range values are clamped rather than refused (a server cannot raise on one request's values).
    """
    if not _per_row(temperature) and temperature <= 0:
        raise ValueError(f"temperature must be positive; got {temperature}")
    if top_k is not None and not _per_row(top_k) and top_k < 1:
        raise ValueError(f"top_k must be at least 1; got {top_k}")
    if top_p is not None and not _per_row(top_p) and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1]; got {top_p}")
    per_row = any(_per_row(option) for option in (temperature, top_k, top_p, seed))
    if seed is None and per_row:
        raise ValueError("per-row sampling options need a seed, an int or one per row: their draws are stateless")
    base_seed = tf.random.uniform([], maxval=2**31 - 1, dtype=tf.int32) if seed is None else seed

    def uniform(index, batch_size):
        if _per_row(seed):
            return _uniform(_rows(base_seed, batch_size, "uint32"), index, 0)
        return _uniform(base_seed, index, ops.arange(batch_size))

    def choose(log_probs, index):
        logits = log_probs / temperature  # log-probabilities are logits of the same distribution
        draws = uniform(index, ops.shape(logits)[0])
        if top_k is None and top_p is None:
            return _draw(logits, draws)
        # The candidates, best first: the top k, then (top_p) the smallest prefix holding probability p.
        values, indices = ops.top_k(logits, min(top_k or logits.shape[-1], logits.shape[-1]))
        if top_p is not None:
            values = _nucleus(values, top_p)
        return ops.take_along_axis(indices, _draw(values, draws)[:, None], axis=-1)[:, 0]

    def choose_per_row(log_probs, index):
        batch_size, vocabulary_size = ops.shape(log_probs)[0], log_probs.shape[-1]
        temperatures = _rows(temperature, batch_size, "float32")
        greedy = ops.logical_not(temperatures > 0)  # NaN too
        # With the best token at 0 no positive temperature, however small, makes every logit -inf; and the
        # suppressed ids stay impossible however flat a large temperature makes the rest.
        shifted = log_probs - ops.max(log_probs, axis=-1, keepdims=True)
        logits = ops.where(log_probs <= _NEG, _NEG, shifted / ops.where(greedy, 1.0, temperatures)[:, None])
        # A k per row: sort the whole vocabulary, then drop each row's candidates from rank k on.
        values, indices = ops.top_k(logits, vocabulary_size)
        k = _rows(0 if top_k is None else top_k, batch_size, "int32")
        k = ops.where(ops.logical_or(k <= 0, k >= vocabulary_size), vocabulary_size, k)
        values = ops.where(ops.arange(vocabulary_size)[None, :] < k[:, None], values, _NEG)
        # top_p <= 0 (or NaN) keeps the smallest nonempty prefix: the most likely token alone.
        p = _rows(1.0 if top_p is None else top_p, batch_size, "float32")
        p = ops.where(p > 0, ops.minimum(p, 1.0), np.finfo(np.float32).tiny)
        values = _nucleus(values, p[:, None])
        drawn = ops.take_along_axis(indices, _draw(values, uniform(index, batch_size))[:, None], axis=-1)[:, 0]
        best = ops.argmax(log_probs, axis=-1)
        return ops.where(greedy, ops.cast(best, "int32"), ops.cast(drawn, "int32"))

    return choose_per_row if per_row else choose


def sampling_loop(
    step: Step,
    state: Any,
    prompt_tokens: Any,
    prompt_lengths: Any,
    limits: Any,
    *,
    max_length: Any,
    end_id: int,
    pad_id: int = 0,
    suppressed_ids: Sequence[int] = (),
    end_at_limit: bool = False,
    temperature: float | PerRow = 1.0,
    top_k: int | None | PerRow = None,
    top_p: float | None | PerRow = None,
    seed: int | None | PerRow = None,
) -> dict[str, Any]:
    """Draw each token from the model's distribution: tempered, then top-k and top-p filtered.

    Each of `temperature`, `top_k`, `top_p` and `seed` is either a Python number, the same for every row and
    checked here (a ValueError when out of range), or a [B] tensor or array, one value per row: the per-request
    values of a serving signature. As soon as one is per row, each row samples with its own values, and values
    out of range are clamped rather than refused, since a server cannot fail one request of a batch:
    temperature <= 0 (or NaN) makes that row greedy (its most likely token, as `greedy_loop`); top_k <= 0 or
    >= V filters nothing; top_p > 1 is 1, and top_p <= 0 (or NaN) keeps the most likely token alone. A per-row
    search needs a seed (None is refused), and a per-row top_k sorts the whole vocabulary at every step.

    Args:
        step, state, prompt_tokens, prompt_lengths, limits, max_length, end_id, pad_id, suppressed_ids,
            end_at_limit: as in `greedy_loop`.
        temperature: divides the logits (< 1 sharper, > 1 flatter).
        top_k: draw among the k most likely tokens only (None: all); `top_k=1` is greedy search.
        top_p: draw among the most likely tokens holding probability `top_p` (nucleus sampling; None: all).
        seed: the same tokens on every call, eagerly, compiled or in a SavedModel (stateless draws). An int: row
            b's draw at step i is a hash of (seed, i, b). One per row: a hash of (seed[b], i), so a request
            samples the same tokens alone or at any place in any batch. None draws a new base seed per call.

    Returns:
        as `greedy_loop`; `scores` are log-probabilities under the model (before temperature).

    Example:
    >>> # out = sampling_loop(step, cache, prompts, lengths, lengths + 32, max_length=96, end_id=3, top_p=0.9, seed=1)
    >>> # Per request, as a serving signature gets them (row 1 greedy):
    >>> # out = sampling_loop(step, cache, prompts, lengths, lengths + 32, max_length=96, end_id=3,
    >>> #     temperature=tf.constant([0.8, 0.0]), top_k=tf.constant([40, 0]), top_p=tf.constant([0.9, 1.0]),
    >>> #     seed=tf.constant([17, 3]))
    """
    return _token_loop(
        sampler(temperature, top_k, top_p, seed),
        step,
        state,
        prompt_tokens,
        prompt_lengths,
        limits,
        max_length=max_length,
        end_id=end_id,
        pad_id=pad_id,
        suppressed_ids=suppressed_ids,
        end_at_limit=end_at_limit,
    )


def _gather_beams(values, indices):
    """values [B, K, ...] → values[b, indices[b, j], ...] for indices [B, J]."""
    expanded = ops.reshape(indices, ops.shape(indices) + (1,) * (len(values.shape) - 2))
    return ops.take_along_axis(values, expanded, axis=1)


def beam_loop(
    step: Step,
    state: Any,
    prompt_tokens: Any,
    prompt_lengths: Any,
    limits: Any,
    *,
    max_length: Any,
    end_id: int,
    pad_id: int = 0,
    suppressed_ids: Sequence[int] = (),
    end_at_limit: bool = False,
    beam_size: int = 4,
    alpha: float = 0.6,
    num_hypotheses: int = 1,
) -> dict[str, Any]:
    """Keep the `beam_size` best partial sequences; rank ended ones by log-prob / lp(generated length).

    Each step extends every alive hypothesis, keeps the 2K best extensions (so K of them can be alive even if up
    to K ended), moves the ended ones into a K-best finished list scored with the GNMT length penalty over their
    generated tokens, and reorders the state's rows to follow their hypotheses. The search stops when, for every
    row, no alive hypothesis can still beat the `num_hypotheses`-th finished one: a score only falls as tokens are
    added, and lp grows with length, so an alive hypothesis can at best end at its current score divided by lp(its
    budget). The returned n-best list is then final, and a 1-best search stops sooner than a K-best one would.

    Args:
        step, prompt_tokens, prompt_lengths, limits, max_length, end_id, pad_id, suppressed_ids, end_at_limit:
            as in `greedy_loop`; `step` sees B*K rows, beam j of row b at row b*K + j.
        state: the step's initial state for the B rows, as in `greedy_loop`; the loop repeats each row K times.
        beam_size: K, hypotheses kept per row.
        alpha: length-penalty exponent α (0 = raw log-probability; larger favours longer outputs).
        num_hypotheses: N, the n-best size returned (≤ beam_size).

    Returns:
        dict with `tokens` [B, N, max_length], `scores` [B, N] (log-probability / lp(generated tokens), best first)
        and `lengths` [B, N], laid out as in `greedy_loop`. A row that may generate nothing has N copies of its
        empty continuation, each with score 0.

    Example:
    >>> # out = beam_loop(step, cache, prompts, lengths, lengths + 32, max_length=96, end_id=3, beam_size=4)
    """
    if not 1 <= num_hypotheses <= beam_size:
        raise ValueError(f"num_hypotheses must be between 1 and beam_size ({beam_size}); got {num_hypotheses}")
    prompt_tokens, prompt_lengths, limits, positions, start = _prepare(
        prompt_tokens, prompt_lengths, limits, max_length
    )
    batch_size = ops.shape(prompt_tokens)[0]
    k = beam_size
    prompts = _prompt_buffer(prompt_tokens, prompt_lengths, positions, pad_id)
    state = keras.tree.map_structure(lambda t: ops.repeat(t, k, axis=0), state)  # rows b*K + j
    done = ops.expand_dims(prompt_lengths >= limits, 1)  # [B, 1]: rows that may generate nothing
    alive_tokens = ops.repeat(ops.expand_dims(prompts, 1), k, axis=1)
    # Only the first beam is live at the start, so the K copies of the prompt do not fill the beam.
    alive_scores = ops.where(ops.logical_and(ops.arange(k)[None, :] == 0, ops.logical_not(done)), 0.0, _NEG)
    # A row that may generate nothing has one output, its empty continuation with score 0, in every slot: no
    # hypothesis the loop makes while other rows run can then enter its list.
    finished_tokens = alive_tokens
    finished_scores = ops.where(done, ops.zeros((batch_size, k)), _NEG)
    last_positions = ops.expand_dims(limits - 1, 1)  # [B, 1]
    offsets = ops.expand_dims(prompt_lengths - 1, 1)  # position - offset = generated tokens up to that position
    beam_offsets = ops.expand_dims(ops.arange(batch_size, dtype="int32") * k, 1)  # [B, 1]
    budget_penalty = length_penalty(ops.maximum(limits - prompt_lengths, 0), alpha)  # the largest lp alive can reach
    forcing = prompt_tokens.shape[1] != 1  # as in `_token_loop`

    def cond(index, alive_tokens, alive_scores, finished_tokens, finished_scores, state):
        best_possible = alive_scores[:, 0] / budget_penalty
        improvable = best_possible > finished_scores[:, num_hypotheses - 1]
        return ops.logical_and(index < max_length - 1, ops.any(improvable))

    def body(index, alive_tokens, alive_scores, finished_tokens, finished_scores, state):
        step_tokens = ops.reshape(_column(alive_tokens, index, positions), (-1,))
        logits, state = step(step_tokens, index, state)
        vocabulary_size = logits.shape[-1]
        vocabulary = np.arange(vocabulary_size, dtype="int32")
        log_probs = ops.reshape(next_token_log_probs(logits, pad_id, suppressed_ids), (batch_size, k, vocabulary_size))
        position = index + 1
        if forcing:
            inside_prompt = ops.expand_dims(position < prompt_lengths, 1)  # [B, 1]
            forced = ops.equal(vocabulary, ops.expand_dims(_column(prompts, position, positions), 1))  # [B, V]
            forced_log_probs = ops.where(forced, 0.0, _NEG)[:, None, :]
            log_probs = ops.where(inside_prompt[:, :, None], forced_log_probs, log_probs)
        at_limit = position >= last_positions  # [B, 1]
        if end_at_limit:  # at its limit a hypothesis may only end
            log_probs = ops.where(ops.logical_and(at_limit[:, :, None], vocabulary != end_id), _NEG, log_probs)

        candidates = ops.reshape(ops.expand_dims(alive_scores, -1) + log_probs, (batch_size, -1))
        top_scores, top_indices = ops.top_k(candidates, 2 * k)
        source_beams = ops.cast(top_indices // vocabulary_size, "int32")
        new_tokens = ops.cast(top_indices % vocabulary_size, "int32")
        sequences = _write_column(_gather_beams(alive_tokens, source_beams), position, new_tokens, positions)
        ended = ops.equal(new_tokens, end_id)
        if not end_at_limit:
            ended = ops.logical_or(ended, at_limit)
        if forcing:
            ended = ops.logical_and(ended, ops.logical_not(inside_prompt))

        # Alive: the K best extensions that did not end.
        alive_scores, alive_pick = ops.top_k(ops.where(ended, _NEG, top_scores), k)
        alive_tokens = _gather_beams(sequences, alive_pick)
        rows = ops.reshape(_gather_beams(source_beams, alive_pick) + beam_offsets, (-1,))
        state = keras.tree.map_structure(lambda t: ops.take(t, rows, axis=0), state)

        # Finished: the K best of those already finished and those that ended now.
        ended_scores = ops.where(ended, top_scores / length_penalty(position - offsets, alpha), _NEG)
        pool_scores = ops.concatenate([finished_scores, ended_scores], axis=1)
        pool_tokens = ops.concatenate([finished_tokens, sequences], axis=1)
        finished_scores, finished_pick = ops.top_k(pool_scores, k)
        finished_tokens = _gather_beams(pool_tokens, finished_pick)
        return position, alive_tokens, alive_scores, finished_tokens, finished_scores, state

    loop_vars = (start, alive_tokens, alive_scores, finished_tokens, finished_scores, state)
    _, _, _, finished_tokens, finished_scores, _ = ops.while_loop(
        cond, body, loop_vars, maximum_iterations=max_length - 1
    )
    tokens = finished_tokens[:, :num_hypotheses]
    lengths = ops.sum(ops.cast(ops.not_equal(tokens, pad_id), "int32"), axis=-1) - prompt_lengths[:, None]
    return {"tokens": tokens, "scores": finished_scores[:, :num_hypotheses], "lengths": lengths}


# The loops a search name selects.
LOOPS = {"beam": beam_loop, "greedy": greedy_loop, "sample": sampling_loop}
