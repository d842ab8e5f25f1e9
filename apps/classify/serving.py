"""The classify app's serving graph: text in; label, probabilities, classes and windows out.

The same module classifies in-process for `evaluate` and `predict --out`, so what is reported is what is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from kerasllm.data.windows import WINDOW_AGGREGATIONS, aggregate_windows, check_window_arguments, sliding_windows
from kerasllm.export import ServingModule


class ClassifyModule(ServingModule):
    """normalize → tokenize → sliding windows → classifier → aggregate → softmax, as `serving_default`.

    `serve(text)` takes a batch of UTF-8 strings and returns, one row per text:
    - `label` (string): the most probable class name;
    - `probabilities` (float32 [B, C]): the softmax of the text's aggregated window logits;
    - `classes` (string [B, C]): the class names, in the order of `probabilities`;
    - `windows` (int32): how many windows of `window` tokens the text was read in (1 for a text that fits). A
      text with no tokens (empty, blank, only characters the vocabulary drops) has 0 windows and gets the training
      set's class frequencies (`prior`) as its probabilities: the answer of a model that has seen nothing, alone
      or in any batch.

    Args:
        model: a classifier, token ids [W, S] → logits [W, C] (serve `serving_copy(model)`).
        tokenizer: the run's `kerasllm.data.tokenizer.SubwordTokenizer`.
        label_names: the class names, index = class id.
        prior: the training set's class frequencies, the answer for a text with no tokens.
        window: the model's window (the run's `max_tokens`).
        stride: tokens between window starts.
        aggregate: "mean" or "max" of the window logits.

    Example:
    >>> # module = ClassifyModule(serving_copy(model), tokenizer, label_names=["ham", "spam"], prior=[0.87, 0.13],
    >>> #                         window=64, stride=32)
    >>> # module.serve(tf.constant(["WINNER! claim your prize"]))["label"]  # [b"spam"]
    """

    def __init__(
        self,
        model: keras.Model,
        tokenizer: Any,
        *,
        label_names: Sequence[str],
        prior: Sequence[float],
        window: int,
        stride: int,
        aggregate: str = "mean",
    ):
        super().__init__(model)
        if len(prior) != len(label_names):
            raise ValueError(f"prior has {len(prior)} values for {len(label_names)} classes")
        self.tokenizer = tokenizer
        self.label_names = tuple(label_names)
        self._label_names = tf.constant(list(label_names), tf.string)
        self._prior = tf.constant(list(prior), tf.float32)
        self._window, self._stride, self._aggregate = window, stride, aggregate
        check_window_arguments(window, stride)
        if aggregate not in WINDOW_AGGREGATIONS:
            raise ValueError(f"aggregate must be one of {WINDOW_AGGREGATIONS}, got {aggregate!r}")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], jit_compile=False)
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        token_ids = self.tokenizer.tokenize(text)
        windows, row_ids = sliding_windows(token_ids, self._window, self._stride)
        # At least one column, so a batch of only empty texts still has a well-formed [0, 1] model input.
        window_ids = windows.to_tensor(default_value=0)
        window_ids = tf.pad(window_ids, [[0, 0], [0, tf.maximum(1 - tf.shape(window_ids)[1], 0)]])
        logits = tf.cast(self.model(window_ids, training=False), tf.float32)
        scores, counts = aggregate_windows(logits, row_ids, token_ids.nrows(), self._aggregate)
        read = tf.expand_dims(counts > 0, -1)
        probabilities = tf.where(read, tf.nn.softmax(scores), tf.broadcast_to(self._prior, tf.shape(scores)))
        batch = tf.shape(text)[0]
        return {
            "label": tf.gather(self._label_names, tf.argmax(probabilities, axis=-1, output_type=tf.int32)),
            "probabilities": probabilities,
            "classes": tf.tile(self._label_names[tf.newaxis], [batch, 1]),
            "windows": counts,
        }
