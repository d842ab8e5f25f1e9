"""Compile a search once per input-length bucket, so repeated calls never re-trace or re-compile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops


def compile_search(
    search: Callable[..., dict],
    model: keras.Model,
    /,
    *,
    jit_compile: bool = True,
    pad_to_multiple: int = 8,
    **options: Any,
) -> Callable[..., dict]:
    """Wrap `search(model, tokens, *arguments, **options)` into a compiled function of `(tokens, *arguments)`.

    On TensorFlow the search becomes one `tf.function`, XLA-compiled when `jit_compile` (training
    and benchmarking; a SavedModel for TF Serving must not contain XLA: export uses
    `jit_compile=False`). The tokens (a seq2seq search's sources, `generate`'s prompts) are right-padded
    with 0 to a multiple of `pad_to_multiple` columns so a stream of different lengths compiles a handful of
    programs, not one per length (the cause of keras-hub#779's slow `generate()`); trailing padding does not
    change the outputs. Other Keras backends run the same code eagerly.

    Args:
        search: `greedy_search`, `beam_search` or `sample` (seq2seq), or `generate` (causal LM).
        model: the model to decode with.
        jit_compile: XLA-compile the whole loop.
        pad_to_multiple: input-length bucket width.
        **options: keyword arguments of `search` (start_id, end_id, beam_size, max_length, seed, ...).

    Returns:
        `call(tokens, *arguments) -> dict`; `arguments` are int tensors passed on to `search` after the tokens
        (`generate`'s `prompt_lengths`).

    Example:
    >>> # translate_ids = compile_search(beam_search, model, start_id=2, end_id=3, beam_size=4)
    >>> # out = translate_ids(encoder_tokens)
    >>> # continue_ids = compile_search(generate, lm, max_new_tokens=32, end_id=3)
    >>> # out = continue_ids(prompt_tokens, prompt_lengths)
    """

    if jit_compile and options.get("static_shapes") is False:
        raise ValueError(
            "static_shapes=False sizes buffers at run time, which XLA cannot compile; pass jit_compile=False with it."
        )

    def run(tokens, *arguments):
        return search(model, tokens, *arguments, **options)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        run = tf.function(run, jit_compile=jit_compile, reduce_retracing=False)

    def padded_call(tokens, *arguments) -> dict:
        tokens = ops.convert_to_tensor(tokens, "int32")
        extra = -tokens.shape[1] % pad_to_multiple
        if extra:
            tokens = ops.pad(tokens, [[0, 0], [0, extra]])
        return run(tokens, *(ops.convert_to_tensor(argument, "int32") for argument in arguments))

    return padded_call
