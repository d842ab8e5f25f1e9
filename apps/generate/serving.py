"""The generate app's serving graph: prompt strings and sampling settings in, generated text out.

The whole generation runs inside the signature: tokenization, the prefill of the prompt into the cache, the cached
sampling loop (a `tf.while_loop`) and detokenization. keras-hub exports `call()` only; the TF tutorial's `OneStep`
exports one step. `Generator` in app.py calls the same module in-process, so what is evaluated is what is served.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from kerasllm.decoding import generate
from kerasllm.export import ServingModule

SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="prompt"),
    tf.TensorSpec([None], tf.int32, name="max_new_tokens"),
    tf.TensorSpec([None], tf.float32, name="temperature"),
    tf.TensorSpec([None], tf.int32, name="top_k"),
    tf.TensorSpec([None], tf.float32, name="top_p"),
    tf.TensorSpec([None], tf.int32, name="seed"),
]


def keep_last(ids: tf.RaggedTensor, keep: tf.Tensor) -> tf.RaggedTensor:
    """The last `keep[b]` ids of each row of a ragged [B, (n)] batch (any B, 0 included)."""
    lengths = ids.row_lengths()
    kept = tf.minimum(lengths, tf.maximum(tf.cast(keep, lengths.dtype), 0))
    starts = ids.row_starts() + lengths - kept
    positions = tf.ragged.range(starts, starts + kept)
    return tf.RaggedTensor.from_row_lengths(tf.gather(ids.values, positions.values), kept)


class GenerateModule(ServingModule):
    """prompt → tokenize → keep what fits → prefill + cached sampling → detokenize, as `serving_default`.

    `serve(prompt, max_new_tokens, temperature, top_k, top_p, seed)` takes one row per request (TF Serving's
    "instances") and defines every value instead of failing on it:
    - `max_new_tokens` is clamped to [0, context − 1]; 0 generates nothing;
    - `temperature` ≤ 0 is greedy search (the most likely token every step);
    - `top_k` ≤ 0 (or ≥ the vocabulary) keeps every token; `top_p` is clamped to (0, 1], ≤ 0 keeping only the most
      likely token, 1 keeping all;
    - `seed`: the same prompt, settings and seed give the same text, alone or in any batch;
    - a prompt longer than the context keeps its last `context − 1 − max_new_tokens` tokens (`truncated` is true);
      an empty prompt continues from the start of a text (the corpus's line start); characters outside a character
      vocabulary read as [UNK]; invalid UTF-8 reads as U+FFFD.
    It returns `text` (the continuation only), `prompt` (the prompt as the model read it, after any cut),
    `truncated` (bool) and `new_tokens` (int32, tokens generated).

    Args:
        model: a causal LM with `init_cache` / `call_with_cache` (serve `serving_copy(model)`).
        tokenizer: the run's tokenizer (characters or WordPiece).
        context: positions the model reads (the run's block size).
        context_start_id: the token every prompt is read after (the corpus's line start).
        end_id: the token that ends a continuation early.

    Example:
    >>> # module = GenerateModule(serving_copy(model), tokenizer, context=256, context_start_id=4, end_id=3)
    >>> # module.serve(tf.constant(["ROMEO:"]), [64], [0.8], [0], [1.0], [1])["text"]
    """

    def __init__(self, model: keras.Model, tokenizer: Any, *, context: int, context_start_id: int, end_id: int):
        super().__init__(model)
        self.tokenizer = tokenizer
        self._context, self._context_start_id, self._end_id = context, context_start_id, end_id

    @tf.function(input_signature=SIGNATURE, jit_compile=False)
    def serve(self, prompt, max_new_tokens, temperature, top_k, top_p, seed) -> dict[str, tf.Tensor]:
        budget = tf.clip_by_value(max_new_tokens, 0, self._context - 1)
        ids = self.tokenizer.tokenize(prompt)
        room = self._context - 1 - budget
        kept = keep_last(ids, room)
        truncated = tf.cast(ids.row_lengths(), tf.int32) > room
        batch = tf.shape(prompt)[0]
        start = tf.fill([batch, 1], self._context_start_id)
        prompt_ids = tf.concat([tf.RaggedTensor.from_tensor(start), kept], axis=1)
        out = generate(
            self.model,
            prompt_ids.to_tensor(0),
            tf.cast(prompt_ids.row_lengths(), tf.int32),
            max_new_tokens=budget,
            end_id=self._end_id,
            search="sample",
            max_length=self._context,
            static_shapes=False,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return {
            "text": self.tokenizer.detokenize(out["tokens"]),
            "prompt": self.tokenizer.detokenize(kept),
            "truncated": truncated,
            "new_tokens": out["lengths"],
        }
