"""The translate app's serving graph: text in, translations and scores out (`kerasllm.export.export_saved_model`)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from kerasllm.decoding import SEARCHES
from kerasllm.export import ServingModule


class TranslateModule(ServingModule):
    """normalize → tokenize → truncate → search → detokenize, as `serving_default`.

    `serve(text)` takes a batch of UTF-8 strings and returns `translations` (strings) and `scores` (float32: the
    search's score of the best hypothesis; for beam search its length-normalized log-probability). An empty or
    blank text gives an empty translation with score 0, alone or in any batch.

    Args:
        model: a seq2seq model with the decoding interface (serve `serving_copy(model)`).
        source_tokenizer, target_tokenizer: `kerasllm.data.tokenizer.SubwordTokenizer`s.
        max_source_length: source tokens kept (longer inputs are truncated, never rejected).
        search: a `kerasllm.decoding.SEARCHES` name, "beam" or "greedy".
        **search_options: keyword arguments of the search (beam_size, alpha, max_length, ...).

    Example:
    >>> # module = TranslateModule(serving_copy(model), src_tok, tgt_tok, max_source_length=128, beam_size=4)
    >>> # export_saved_model(module, "saved_models/translate")
    """

    def __init__(
        self,
        model: keras.Model,
        source_tokenizer: Any,
        target_tokenizer: Any,
        *,
        max_source_length: int,
        search: str = "beam",
        **search_options: Any,
    ):
        super().__init__(model)
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {sorted(SEARCHES)}; got {search!r}")
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self._search = SEARCHES[search]
        self._max_source_length = max_source_length
        self._search_options = search_options

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], jit_compile=False)
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        source = self.source_tokenizer.tokenize(text)[:, : self._max_source_length]
        encoder_tokens = source.to_tensor(default_value=0)
        # No XLA here, so the buffers and cache can be sized per batch: a 20-word sentence's beam search reads
        # and writes a 55-slot cache each step instead of a max_length one.
        result = self._search(
            self.model,
            encoder_tokens,
            start_id=self.target_tokenizer.start_id,
            end_id=self.target_tokenizer.end_id,
            static_shapes=False,
            **self._search_options,
        )
        tokens, scores = result["tokens"], result["scores"]
        if len(tokens.shape) == 3:  # beam search returns an n-best list: serve the best.
            tokens, scores = tokens[:, 0], scores[:, 0]
        return {"translations": self.target_tokenizer.detokenize(tokens), "scores": scores}
