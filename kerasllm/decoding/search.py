"""Batched autoregressive decoding for seq2seq models: greedy, sampling and beam search.

Every search drives a model through the decoding interface shared by `Transformer` and `LSTMSeq2Seq`:

    encoder_state = model.encode(encoder_tokens)                 # batch-major dict
    cache = model.init_cache(encoder_state, buffer_length)       # batch-major dict
    logits, cache = model.decode_step(token_ids, index, cache, encoder_state)

inside one `keras.ops.while_loop`, so the whole search compiles into a single XLA program
(`compile_search`) or runs as a plain TF graph inside a SavedModel. The loop stops as soon as every
sequence has ended. XLA needs static shapes, so by default the token buffers and the cache hold
`max_length` positions; a plain TF graph can size them at run time to the batch's length budget
(`static_shapes=False`, as the SavedModel does), and every step then reads and writes a cache of
that size instead of `max_length`. Columns of the token buffers are written with a `where` blend rather than
`keras.ops.slice_update`: on TensorFlow the latter is `XlaDynamicUpdateSlice`, which the stock
TF Serving binary cannot run.

Why our own loops rather than keras-hub's samplers' `__call__`: those decode a decoder-only prompt
buffer and have no encoder state, no per-source maximum length, and (BeamSampler) no length penalty
or n-best list. We do reuse keras-hub's token choice (`get_next_token`, top-k / top-p / temperature)
for sampling.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasllm.data.tokenizer import END_ID, PAD_ID, START_ID

# Scores of impossible hypotheses: finite, so that sums and differences never make NaN.
_NEG = -1.0e9


def _write_column(buffer, index, values):
    """buffer[..., index] = values, for a buffer [..., L] and values [...]."""
    positions = ops.arange(ops.shape(buffer)[-1], dtype="int32")
    return ops.where(ops.equal(positions, index), ops.expand_dims(values, -1), buffer)


def _column(buffer, index):
    """buffer[..., index] for a traced scalar index (no XLA-only gather)."""
    positions = ops.arange(ops.shape(buffer)[-1], dtype="int32")
    return ops.sum(ops.where(ops.equal(positions, index), buffer, ops.zeros_like(buffer)), axis=-1)


def _log_probs(logits):
    """The model's float32 log-probabilities, with [PAD] and [START] made impossible: a decoder must
    never emit them (a PAD fed back would also be attended as a real key, unlike in training). Scores
    stay the model's own log p(y): the forbidden mass is not renormalized away."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    ids = ops.arange(ops.shape(logits)[-1], dtype="int32")
    return ops.where(ops.logical_or(ops.equal(ids, PAD_ID), ops.equal(ids, START_ID)), _NEG, log_probs)


def max_new_tokens(encoder_tokens, max_length: int, length_ratio: float, length_offset: int):
    """Per-example budget of generated tokens (END included): ratio × source length + offset,
    capped by the decoder's `max_length` positions less the START token."""
    source_lengths = ops.sum(ops.cast(ops.not_equal(encoder_tokens, PAD_ID), "float32"), axis=1)
    limits = ops.cast(ops.ceil(length_ratio * source_lengths), "int32") + length_offset
    return ops.clip(limits, 1, max_length - 1)


def _buffer_length(limits, max_length: int, static_shapes: bool):
    """Decoder positions to allocate: `max_length`, or the batch's largest budget plus START."""
    return max_length if static_shapes else ops.max(limits, initial=0) + 1


def _sequence_lengths(tokens):
    """Tokens up to and including END (a sequence stopped by the budget ends with its forced END)."""
    return ops.sum(ops.cast(ops.not_equal(tokens, PAD_ID), "int32"), axis=-1)


def _decode_loop(model, encoder_tokens, choose_token, max_length: int, length_ratio: float, length_offset: int,
                 static_shapes: bool):
    encoder_tokens = ops.cast(encoder_tokens, "int32")
    batch_size = ops.shape(encoder_tokens)[0]
    limits = max_new_tokens(encoder_tokens, max_length, length_ratio, length_offset)
    length = _buffer_length(limits, max_length, static_shapes)
    encoder_state = model.encode(encoder_tokens, training=False)
    cache = model.init_cache(encoder_state, length)
    tokens = _write_column(ops.zeros((batch_size, length), "int32"), 0, ops.full((batch_size,), START_ID, "int32"))
    finished = ops.zeros((batch_size,), "bool")
    scores = ops.zeros((batch_size,), "float32")

    def cond(index, tokens, cache, finished, scores):
        return ops.logical_and(index < length - 1, ops.logical_not(ops.all(finished)))

    def body(index, tokens, cache, finished, scores):
        logits, cache = model.decode_step(_column(tokens, index), index, cache, encoder_state)
        log_probs = _log_probs(logits)
        next_tokens = ops.cast(choose_token(log_probs), "int32")
        next_tokens = ops.where(index + 1 >= limits, END_ID, next_tokens)
        next_tokens = ops.where(finished, PAD_ID, next_tokens)
        chosen = ops.take_along_axis(log_probs, ops.expand_dims(next_tokens, -1), axis=-1)[:, 0]
        scores = scores + ops.where(finished, 0.0, chosen)
        tokens = _write_column(tokens, index + 1, next_tokens)
        finished = ops.logical_or(finished, ops.equal(next_tokens, END_ID))
        return index + 1, tokens, cache, finished, scores

    _, tokens, _, _, scores = ops.while_loop(cond, body, (ops.convert_to_tensor(0, "int32"), tokens, cache, finished, scores),
                                             maximum_iterations=length - 1)
    tokens = tokens[:, 1:]
    return {"tokens": tokens, "scores": scores, "lengths": _sequence_lengths(tokens)}


def greedy_search(model, encoder_tokens, *, max_length: int = 128, length_ratio: float = 2.0,
                  length_offset: int = 10, static_shapes: bool = True) -> dict[str, Any]:
    """Pick the most likely token at every step.

    Args:
        model: a seq2seq model with the decoding interface (`encode`, `init_cache`, `decode_step`).
        encoder_tokens: [B, S] int source ids, 0-padded.
        max_length: decoder positions, START included: the hard cap (and the cache size with
            static shapes).
        length_ratio, length_offset: each output stops after `ratio × source length + offset`
            tokens (END forced there), so a short input never decodes for `max_length` steps.
        static_shapes: allocate `max_length` positions (as XLA needs), else the batch's largest
            budget plus one, known at run time (plain TF graphs: the SavedModel). Same outputs.

    Returns:
        dict with `tokens` [B, L - 1] (END included, 0 after it), `scores` [B] (sum of token
        log-probabilities) and `lengths` [B] (tokens up to and including END); L is the number of
        positions allocated (see `static_shapes`).

    Example:
    >>> # out = compile_search(greedy_search, model)(encoder_tokens)
    """
    return _decode_loop(model, encoder_tokens, lambda log_probs: ops.argmax(log_probs, axis=-1), max_length,
                        length_ratio, length_offset, static_shapes)


def sample(model, encoder_tokens, *, sampler: Any, max_length: int = 128, length_ratio: float = 2.0,
           length_offset: int = 10, static_shapes: bool = True) -> dict[str, Any]:
    """Draw each token from the model's distribution through a keras-hub sampler.

    Args:
        model: a seq2seq model with the decoding interface.
        encoder_tokens: [B, S] int source ids, 0-padded.
        sampler: a `keras_hub.samplers` instance that draws tokens, e.g. `TopKSampler(k=10, seed=1)`,
            `TopPSampler(p=0.9, seed=1)` or `RandomSampler(temperature=0.7, seed=1)`; its
            temperature, top-k / top-p filtering and seed are used as they are.
        max_length, length_ratio, length_offset, static_shapes: as in `greedy_search`.

    Returns:
        as `greedy_search`; `scores` are log-probabilities under the model (before temperature).

    Example:
    >>> import keras_hub
    >>> # out = compile_search(sample, model, sampler=keras_hub.samplers.TopPSampler(p=0.9, seed=0))(tokens)
    """

    def choose(log_probs):
        # Log-probabilities are logits of the same distribution; temperature divides them alike.
        return sampler.get_next_token(sampler.compute_probabilities(log_probs))

    return _decode_loop(model, encoder_tokens, choose, max_length, length_ratio, length_offset, static_shapes)


def length_penalty(length, alpha: float):
    """GNMT length penalty lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, eq. 14)."""
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


def _gather_beams(values, indices):
    """values [B, K, ...] → values[b, indices[b, j], ...] for indices [B, J]."""
    expanded = ops.reshape(indices, ops.shape(indices) + (1,) * (len(values.shape) - 2))
    return ops.take_along_axis(values, expanded, axis=1)


def beam_search(model, encoder_tokens, *, beam_size: int = 4, alpha: float = 0.6, num_hypotheses: int = 1,
                max_length: int = 128, length_ratio: float = 2.0, length_offset: int = 10,
                static_shapes: bool = True) -> dict[str, Any]:
    """Keep the `beam_size` best partial translations; rank ended ones by log-prob / lp(length).

    Each step extends every alive hypothesis, keeps the 2K best extensions (so K of them can be
    alive even if up to K ended), moves the ended ones into a K-best finished list scored with the
    GNMT length penalty, and reorders the cache rows to follow their hypotheses. The search stops
    when, for every source, no alive hypothesis can still beat the `num_hypotheses`-th finished one:
    a score only falls as tokens are added, and lp grows with length, so an alive hypothesis can at
    best end at its current score divided by lp(its budget). The returned n-best list is then final,
    and a 1-best search stops sooner than a K-best one would.

    Args:
        model: a seq2seq model with the decoding interface.
        encoder_tokens: [B, S] int source ids, 0-padded.
        beam_size: K, hypotheses kept per source.
        alpha: length-penalty exponent α (0 = raw log-probability; larger favours longer outputs).
        num_hypotheses: n-best size returned (≤ beam_size).
        max_length, length_ratio, length_offset, static_shapes: as in `greedy_search`.

    Returns:
        dict with `tokens` [B, N, L - 1] (L as in `greedy_search`), `scores` [B, N] (length-normalized, best first)
        and `lengths` [B, N].

    Example:
    >>> # out = compile_search(beam_search, model, beam_size=4, alpha=0.6)(encoder_tokens)
    """
    if not 1 <= num_hypotheses <= beam_size:
        raise ValueError(f"num_hypotheses must be between 1 and beam_size ({beam_size}); got {num_hypotheses}")
    encoder_tokens = ops.cast(encoder_tokens, "int32")
    batch_size = ops.shape(encoder_tokens)[0]
    k = beam_size
    limits = ops.expand_dims(max_new_tokens(encoder_tokens, max_length, length_ratio, length_offset), 1)  # [B, 1]
    length = _buffer_length(limits, max_length, static_shapes)
    encoder_state = model.encode(encoder_tokens, training=False)
    encoder_state = keras.tree.map_structure(lambda t: ops.repeat(t, k, axis=0), encoder_state)  # rows b*K + j
    cache = model.init_cache(encoder_state, length)

    start = _write_column(ops.zeros((batch_size, k, length), "int32"), 0, ops.full((batch_size, k), START_ID, "int32"))
    # Only the first beam is live at the start, so the K copies of START do not fill the beam.
    alive_scores = ops.where(ops.arange(k)[None, :] == 0, 0.0, _NEG) + ops.zeros((batch_size, 1))
    finished_tokens = ops.zeros((batch_size, k, length), "int32")
    finished_scores = ops.full((batch_size, k), _NEG, "float32")
    beam_offsets = ops.expand_dims(ops.arange(batch_size, dtype="int32") * k, 1)  # [B, 1]
    budget_penalty = length_penalty(limits[:, 0], alpha)  # [B], the largest lp an alive hypothesis can reach

    def cond(index, alive_tokens, alive_scores, finished_tokens, finished_scores, cache):
        best_possible = alive_scores[:, 0] / budget_penalty
        improvable = best_possible > finished_scores[:, num_hypotheses - 1]
        return ops.logical_and(index < length - 1, ops.any(improvable))

    def body(index, alive_tokens, alive_scores, finished_tokens, finished_scores, cache):
        step_tokens = ops.reshape(_column(alive_tokens, index), (-1,))
        logits, cache = model.decode_step(step_tokens, index, cache, encoder_state)
        vocabulary_size = ops.shape(logits)[-1]
        log_probs = ops.reshape(_log_probs(logits), (batch_size, k, -1))
        # At its length budget a hypothesis may only end.
        at_limit = ops.expand_dims(index + 1 >= limits, -1)  # [B, 1, 1]
        is_end_column = ops.equal(ops.arange(vocabulary_size, dtype="int32"), END_ID)
        log_probs = ops.where(ops.logical_and(at_limit, ops.logical_not(is_end_column)), _NEG, log_probs)

        candidates = ops.reshape(ops.expand_dims(alive_scores, -1) + log_probs, (batch_size, -1))
        top_scores, top_indices = ops.top_k(candidates, 2 * k)
        source_beams = ops.cast(top_indices // vocabulary_size, "int32")
        new_tokens = ops.cast(top_indices % vocabulary_size, "int32")
        sequences = _write_column(_gather_beams(alive_tokens, source_beams), index + 1, new_tokens)
        ended = ops.equal(new_tokens, END_ID)

        # Alive: the K best extensions that did not end.
        alive_scores, alive_pick = ops.top_k(ops.where(ended, _NEG, top_scores), k)
        alive_tokens = _gather_beams(sequences, alive_pick)
        rows = ops.reshape(_gather_beams(source_beams, alive_pick) + beam_offsets, (-1,))
        cache = keras.tree.map_structure(lambda t: ops.take(t, rows, axis=0), cache)

        # Finished: the K best of those already finished and those that ended now.
        ended_scores = ops.where(ended, top_scores / length_penalty(index + 1, alpha), _NEG)
        pool_scores = ops.concatenate([finished_scores, ended_scores], axis=1)
        pool_tokens = ops.concatenate([finished_tokens, sequences], axis=1)
        finished_scores, finished_pick = ops.top_k(pool_scores, k)
        finished_tokens = _gather_beams(pool_tokens, finished_pick)
        return index + 1, alive_tokens, alive_scores, finished_tokens, finished_scores, cache

    loop_vars = (ops.convert_to_tensor(0, "int32"), start, alive_scores, finished_tokens, finished_scores, cache)
    _, _, _, finished_tokens, finished_scores, _ = ops.while_loop(cond, body, loop_vars, maximum_iterations=length - 1)
    tokens = finished_tokens[:, :num_hypotheses, 1:]
    return {"tokens": tokens, "scores": finished_scores[:, :num_hypotheses], "lengths": _sequence_lengths(tokens)}


# The searches a config or a serving signature can name.
SEARCHES = {"beam": beam_search, "greedy": greedy_search}
