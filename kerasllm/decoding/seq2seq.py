"""Decoding for seq2seq models: greedy, sampling and beam search from an encoded source.

Every search drives a model through the decoding interface shared by `Transformer` and `LSTMSeq2Seq`:

    encoder_state = model.encode(encoder_tokens)                 # batch-major dict
    cache = model.init_cache(encoder_state, max_length)          # batch-major dict
    logits, cache = model.decode_step(token_ids, index, cache, encoder_state)

The source is encoded once; the decoder then runs one of `kerasllm.decoding.loops` from the prompt [START], each
output capped at `ratio × source length + offset` tokens and forced to end with END there. A source with no token
(an empty or whitespace-only input) gets an empty output, score 0 and length 0, whatever else is in the batch.
XLA needs static shapes, so by default the token buffers and the cache hold `max_length` positions; a plain TF graph
can size them at run time to the batch's length budget (`static_shapes=False`, as the SavedModel does), and every
step then reads and writes a cache of that size instead of `max_length`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from kerasllm.decoding.loops import beam_loop, greedy_loop, sampling_loop


def new_token_budget(
    encoder_tokens: Any, *, max_length: int, length_ratio: float, length_offset: int, pad_id: int = 0
) -> Any:
    """Per-source budget of generated tokens (END included): ratio × source length + offset, capped by the
    decoder's `max_length` positions less the START token; 0 for a source with no token."""
    source_lengths = ops.sum(ops.cast(ops.not_equal(encoder_tokens, pad_id), "float32"), axis=1)
    budgets = ops.clip(ops.cast(ops.ceil(length_ratio * source_lengths), "int32") + length_offset, 1, max_length - 1)
    return ops.where(source_lengths > 0, budgets, 0)


def _decode(
    loop: Callable[..., dict],
    model: keras.Model,
    encoder_tokens: Any,
    copies: int,
    *,
    start_id: int,
    end_id: int,
    pad_id: int,
    max_length: int,
    length_ratio: float,
    length_offset: int,
    static_shapes: bool,
    **loop_options: Any,
) -> dict[str, Any]:
    """Encode, then run `loop` from [START]; `copies` rows of the step per source (the beam size)."""
    encoder_tokens = ops.cast(encoder_tokens, "int32")
    batch_size = ops.shape(encoder_tokens)[0]
    limits = 1 + new_token_budget(
        encoder_tokens, max_length=max_length, length_ratio=length_ratio, length_offset=length_offset, pad_id=pad_id
    )
    length = max_length if static_shapes else ops.max(limits, initial=1)
    encoder_state = model.encode(encoder_tokens, training=False)
    cache = model.init_cache(encoder_state, length)
    if copies > 1:  # the loop repeats the cache; the step reads the encoder state of each of its rows
        encoder_state = keras.tree.map_structure(lambda t: ops.repeat(t, copies, axis=0), encoder_state)

    def step(token_ids, index, cache):
        return model.decode_step(token_ids, index, cache, encoder_state)

    out = loop(
        step,
        cache,
        ops.full((batch_size, 1), start_id, "int32"),
        ops.ones((batch_size,), "int32"),
        limits,
        max_length=length,
        end_id=end_id,
        pad_id=pad_id,
        suppressed_ids=(start_id,),
        end_at_limit=True,
        **loop_options,
    )
    return {"tokens": out["tokens"][..., 1:], "scores": out["scores"], "lengths": out["lengths"]}


def greedy_search(
    model: keras.Model,
    encoder_tokens: Any,
    *,
    start_id: int,
    end_id: int,
    pad_id: int = 0,
    max_length: int = 128,
    length_ratio: float = 2.0,
    length_offset: int = 10,
    static_shapes: bool = True,
) -> dict[str, Any]:
    """Pick the most likely token at every step.

    Args:
        model: a seq2seq model with the decoding interface (`encode`, `init_cache`, `decode_step`).
        encoder_tokens: [B, S] int source ids, padded with `pad_id`.
        start_id, end_id: the decoder's [START] (never emitted) and [END] ids, e.g. the tokenizer's.
        pad_id: the padding id of sources and outputs (never emitted). Defaults to `0`.
        max_length: decoder positions, START included: the hard cap (and the cache size with
            static shapes).
        length_ratio, length_offset: each output stops after `ratio × source length + offset`
            tokens (END forced there), so a short input never decodes for `max_length` steps.
        static_shapes: allocate `max_length` positions (as XLA needs), else the batch's largest
            budget plus one, known at run time (plain TF graphs: the SavedModel). Same outputs.

    Returns:
        dict with `tokens` [B, L - 1] (END included, `pad_id` after it), `scores` [B] (sum of token
        log-probabilities) and `lengths` [B] (tokens up to and including END); L is the number of
        positions allocated (see `static_shapes`). An empty source gives no token, score 0, length 0.

    Example:
    >>> # out = compile_search(greedy_search, model, start_id=2, end_id=3)(encoder_tokens)
    """
    return _decode(
        greedy_loop,
        model,
        encoder_tokens,
        1,
        start_id=start_id,
        end_id=end_id,
        pad_id=pad_id,
        max_length=max_length,
        length_ratio=length_ratio,
        length_offset=length_offset,
        static_shapes=static_shapes,
    )


def sample(
    model: keras.Model,
    encoder_tokens: Any,
    *,
    start_id: int,
    end_id: int,
    pad_id: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_length: int = 128,
    length_ratio: float = 2.0,
    length_offset: int = 10,
    static_shapes: bool = True,
) -> dict[str, Any]:
    """Draw each token from the model's distribution: tempered, then top-k and top-p filtered.

    Configured by JSON-able values, as a run config's `"decoding": {"search": "sample", "temperature": 0.8,
    "top_k": 40, "seed": 1}` names them.

    Args:
        model, encoder_tokens, start_id, end_id, pad_id: as in `greedy_search`.
        temperature: divides the logits (< 1 sharper, > 1 flatter).
        top_k: draw among the k most likely tokens only (None: all); `top_k=1` is greedy search.
        top_p: draw among the most likely tokens holding probability `top_p` (nucleus sampling; None: all).
        seed: int: the same outputs on every call, in process or in a SavedModel (stateless draws seeded by
            (seed, step)); None: new draws on every call.
        max_length, length_ratio, length_offset, static_shapes: as in `greedy_search`.

    Returns:
        as `greedy_search`; `scores` are log-probabilities under the model (before temperature).

    Example:
    >>> # out = compile_search(sample, model, start_id=2, end_id=3, top_p=0.9, seed=0)(encoder_tokens)
    """
    return _decode(
        sampling_loop,
        model,
        encoder_tokens,
        1,
        start_id=start_id,
        end_id=end_id,
        pad_id=pad_id,
        max_length=max_length,
        length_ratio=length_ratio,
        length_offset=length_offset,
        static_shapes=static_shapes,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    )


def beam_search(
    model: keras.Model,
    encoder_tokens: Any,
    *,
    start_id: int,
    end_id: int,
    pad_id: int = 0,
    beam_size: int = 4,
    alpha: float = 0.6,
    num_hypotheses: int = 1,
    max_length: int = 128,
    length_ratio: float = 2.0,
    length_offset: int = 10,
    static_shapes: bool = True,
) -> dict[str, Any]:
    """Keep the `beam_size` best partial translations; rank ended ones by log-prob / lp(length).

    The search itself is `kerasllm.decoding.loops.beam_loop`: 2K candidates per step, a K-best finished list
    scored with the GNMT length penalty, and a stop as soon as no alive hypothesis can beat the
    `num_hypotheses`-th finished one.

    Args:
        model, encoder_tokens, start_id, end_id, pad_id: as in `greedy_search`.
        beam_size: K, hypotheses kept per source.
        alpha: length-penalty exponent α (0 = raw log-probability; larger favours longer outputs).
        num_hypotheses: n-best size returned (≤ beam_size).
        max_length, length_ratio, length_offset, static_shapes: as in `greedy_search`.

    Returns:
        dict with `tokens` [B, N, L - 1] (L as in `greedy_search`), `scores` [B, N] (length-normalized, best first)
        and `lengths` [B, N]. Every hypothesis of an empty source is empty, with score 0 and length 0.

    Example:
    >>> # out = compile_search(beam_search, model, start_id=2, end_id=3, beam_size=4, alpha=0.6)(encoder_tokens)
    """
    return _decode(
        beam_loop,
        model,
        encoder_tokens,
        beam_size,
        start_id=start_id,
        end_id=end_id,
        pad_id=pad_id,
        max_length=max_length,
        length_ratio=length_ratio,
        length_offset=length_offset,
        static_shapes=static_shapes,
        beam_size=beam_size,
        alpha=alpha,
        num_hypotheses=num_hypotheses,
    )


# The searches a config or a serving signature can name.
SEARCHES = {"beam": beam_search, "greedy": greedy_search, "sample": sample}
