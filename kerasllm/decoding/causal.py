"""Decoding for causal language models: continue each prompt with greedy search, sampling or beam search.

A causal model offers two calls (`kerasllm.tasks.CausalLM`):

    cache = model.init_cache(batch_size, max_length)                              # pytree, batch-major
    logits, cache = model.call_with_cache(token_ids, cache, cache_update_index)   # [B, T] -> [B, T, V] float32

`generate` prefills the whole prompt batch into the cache in one pass, then runs one of
`kerasllm.decoding.loops` with cached single steps from the shortest prompt's last token. Right padding is safe:
a shorter row's padded slots are rewritten by the loop, which feeds every position from there on, before any
query attends them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from kerasllm.decoding.loops import LOOPS


def generate(
    model: keras.Model,
    prompt_tokens: Any,
    prompt_lengths: Any = None,
    *,
    max_new_tokens: int,
    end_id: int,
    search: str = "greedy",
    pad_id: int = 0,
    max_length: int | None = None,
    suppressed_ids: Sequence[int] = (),
    static_shapes: bool = True,
    **search_options: Any,
) -> dict[str, Any]:
    """Continue each prompt until it emits `end_id` or has `max_new_tokens` new tokens.

    Args:
        model: a causal LM with `init_cache(batch_size, max_length)` and
            `call_with_cache(token_ids, cache, cache_update_index)`.
        prompt_tokens: [B, P] int, prompts right-padded with `pad_id` (each at least one token, e.g. a BOS).
        prompt_lengths: [B] int, each prompt's length; None counts its tokens other than `pad_id`.
        max_new_tokens: int, the most tokens generated per row (the end token included), or a [B] int tensor of
            each row's own budget (a serving graph's per-request value; with `static_shapes=False`).
        end_id: the token that ends a continuation (not forced: a row that reaches its budget just stops).
        search: `"greedy"`, `"sample"` or `"beam"`.
        pad_id: the padding id of prompts and outputs (never emitted). Defaults to `0`.
        max_length: the model's positions, if bounded: a row stops there too, and a prompt longer than that is
            cut to it (and generates nothing). Defaults to `None`, no bound.
        suppressed_ids: other ids never emitted.
        static_shapes: size the cache and buffers from the prompt tensor's width, P + `max_new_tokens` (capped by
            `max_length`), which is static when that width is (XLA; `compile_search` buckets P); else to the
            batch's largest prompt length + budget, known at run time (plain TF graphs: a SavedModel). Same outputs.
        **search_options: the loop's own options: `temperature`, `top_k`, `top_p`, `seed` for `"sample"`;
            `beam_size`, `alpha`, `num_hypotheses` for `"beam"` (see `kerasllm.decoding.loops`).

    Returns:
        dict with `tokens` [B, max_new_tokens] ([B, N, max_new_tokens] for beam search): each row's new tokens
        only, left-aligned, then `pad_id` (the end token included when one was emitted), so a serving graph
        detokenizes them as they are, whatever each prompt's length; `scores` [B] ([B, N]): the generated tokens'
        summed log-probabilities (beam: over lp(length)); `lengths` [B] ([B, N]): generated tokens.

    Example:
    >>> # out = compile_search(generate, lm, max_new_tokens=32, end_id=3, search="sample", top_k=40, seed=1)(
    >>> #     prompt_tokens, prompt_lengths)
    """
    if search not in LOOPS:
        raise ValueError(f"search must be one of {sorted(LOOPS)}; got {search!r}")
    prompt_tokens = ops.cast(prompt_tokens, "int32")
    if prompt_lengths is None:
        prompt_lengths = ops.sum(ops.cast(ops.not_equal(prompt_tokens, pad_id), "int32"), axis=1)
    prompt_lengths = ops.cast(prompt_lengths, "int32")
    limits = prompt_lengths + max_new_tokens
    # Per-row budgets: the output is as wide as the largest, and at least one column (all pad_id when nothing is
    # generated), so an empty batch or all-zero budgets still give well-formed tensors.
    budget = max_new_tokens if isinstance(max_new_tokens, int) else ops.maximum(ops.max(max_new_tokens, initial=1), 1)
    width = ops.shape(prompt_tokens)[1]
    length = width + budget
    if max_length is not None:
        prompt_lengths = ops.minimum(prompt_lengths, max_length)
        limits = ops.minimum(limits, max_length)
        length = _minimum(length, max_length)
    if not static_shapes:
        length = ops.max(limits, initial=1)
    cache = model.init_cache(ops.shape(prompt_tokens)[0], length)
    # Columns past the buffer can only be padding.
    prefill = prompt_tokens[:, : _minimum(width, length)]
    # The loop feeds position min(prompt_lengths) - 1 on, so the prefill must leave a recurrent state (which a later
    # step cannot overwrite, unlike a key/value cache slot) holding exactly the positions before it.
    before_start = ops.arange(ops.shape(prefill)[1]) < ops.min(prompt_lengths, initial=length) - 1
    padding_mask = ops.broadcast_to(before_start[None, :], ops.shape(prefill))
    _, cache = model.call_with_cache(prefill, cache, 0, padding_mask=padding_mask)

    def step(token_ids, index, cache):
        logits, cache = model.call_with_cache(ops.expand_dims(token_ids, 1), cache, index)
        return logits[:, 0], cache

    out = LOOPS[search](
        step,
        cache,
        prompt_tokens,
        prompt_lengths,
        limits,
        max_length=length,
        end_id=end_id,
        pad_id=pad_id,
        suppressed_ids=suppressed_ids,
        **search_options,
    )
    return {
        "tokens": _new_tokens(out["tokens"], prompt_lengths, out["lengths"], budget, pad_id),
        "scores": out["scores"],
        "lengths": out["lengths"],
    }


def _minimum(a, b):
    """min(a, b), a Python int when both are (static shapes stay static)."""
    return min(a, b) if isinstance(a, int) and isinstance(b, int) else ops.minimum(a, b)


def _new_tokens(tokens, prompt_lengths, lengths, width: Any, pad_id: int):
    """The generated part of each sequence of `tokens` [B, (N,) L], left-aligned into [B, (N,) width]."""
    offsets = ops.arange(width, dtype="int32")
    if len(tokens.shape) == 3:
        prompt_lengths = ops.expand_dims(prompt_lengths, 1)
    columns = ops.expand_dims(prompt_lengths, -1) + offsets
    columns = ops.minimum(columns, ops.shape(tokens)[-1] - 1)
    columns = ops.broadcast_to(columns, (*ops.shape(tokens)[:-1], width))
    generated = ops.take_along_axis(tokens, columns, axis=-1)
    return ops.where(offsets < ops.expand_dims(lengths, -1), generated, pad_id)
