"""Compile a search once per source-length bucket, so repeated calls never re-trace or re-compile."""

from __future__ import annotations

from typing import Any, Callable

import keras
from keras import ops


def compile_search(search: Callable[..., dict], model: keras.Model, *, jit_compile: bool = True,
                   pad_to_multiple: int = 8, **options: Any) -> Callable[[Any], dict]:
    """Wrap `search(model, encoder_tokens, **options)` into a compiled function.

    On TensorFlow the search becomes one `tf.function`, XLA-compiled when `jit_compile` (training
    and benchmarking; a SavedModel for TF Serving must not contain XLA: export uses
    `jit_compile=False`). Sources are right-padded with 0 to a multiple of `pad_to_multiple` so a
    stream of different lengths compiles a handful of programs, not one per length (the cause of
    keras-hub#779's slow `generate()`); trailing padding does not change the outputs.
    Other Keras backends run the same code eagerly.

    Args:
        search: `greedy_search`, `beam_search` or `sample`.
        model: the seq2seq model to decode with.
        jit_compile: XLA-compile the whole loop.
        pad_to_multiple: source-length bucket width.
        **options: keyword arguments of `search` (beam_size, max_length, sampler, ...).

    Example:
    >>> # translate_ids = compile_search(beam_search, model, beam_size=4)
    >>> # out = translate_ids(encoder_tokens)
    """

    if jit_compile and options.get("static_shapes") is False:
        raise ValueError("static_shapes=False sizes buffers at run time, which XLA cannot compile; "
                         "pass jit_compile=False with it.")

    def run(encoder_tokens):
        return search(model, encoder_tokens, **options)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        run = tf.function(run, jit_compile=jit_compile, reduce_retracing=False)

    def padded_call(encoder_tokens) -> dict:
        encoder_tokens = ops.convert_to_tensor(encoder_tokens, "int32")
        length = encoder_tokens.shape[1]
        extra = -length % pad_to_multiple
        if extra:
            encoder_tokens = ops.pad(encoder_tokens, [[0, 0], [0, extra]])
        return run(encoder_tokens)

    return padded_call
