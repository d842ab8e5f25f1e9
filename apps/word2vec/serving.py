"""The word2vec serving graph: words in, their nearest neighbours (and vectors) out, for TF Serving."""

from __future__ import annotations

import keras
import tensorflow as tf

from kerasllm.data.skipgrams import Vocabulary, word_tokens
from kerasllm.export import ServingModule

DEFAULT_TOPN = 10

SIGNATURE = """\
serving_default(word: string [B]) ->
  neighbours: string [B, topn]   the nearest words by cosine similarity, best first (the word itself left out)
  scores: float32 [B, topn]      their cosine similarities
  vector: float32 [B, dim]       the word's vector
  known: bool [B]                whether the word is in the vocabulary
Each input is lowercased and read as its first word token (as training read the corpus). A word the vocabulary
does not hold, an empty string or invalid UTF-8 gives known = false, empty neighbours, zero scores and vector.
"""


class Word2VecModule(ServingModule):
    """`serving_default`: words → nearest neighbours, scores, vectors (see `SIGNATURE`).

    Args:
        model: a trained `kerasllm.tasks.Word2Vec`.
        vocabulary: its `Vocabulary`.
        topn: neighbours per word.

    Example:
        >>> module = Word2VecModule(run.model, run.tokenizers["vocabulary"])  # doctest: +SKIP
        >>> module.serve(tf.constant(["king"]))["neighbours"]  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, vocabulary: Vocabulary, topn: int = DEFAULT_TOPN) -> None:
        super().__init__(model)
        self.topn = min(topn, len(vocabulary) - 1)
        self.words = tf.constant(vocabulary.words)
        # The unit rows every request compares against, computed once here rather than in every call.
        self.unit_vectors = tf.Variable(
            tf.math.l2_normalize(tf.convert_to_tensor(model.word_embedding.embeddings), axis=1), trainable=False
        )
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self.words, tf.range(len(vocabulary), dtype=tf.int32)),
            default_value=-1,
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="word")], jit_compile=False)
    def serve(self, word: tf.Tensor) -> dict[str, tf.Tensor]:
        first = word_tokens(word)[:, :1].to_tensor(default_value="", shape=[None, 1])[:, 0]
        ids = self.table.lookup(first)
        known = ids >= 0
        vectors = tf.convert_to_tensor(self.model.word_embedding.embeddings)
        vector = tf.where(known[:, None], tf.gather(vectors, tf.maximum(ids, 0)), 0.0)
        similarity = tf.matmul(tf.math.l2_normalize(vector, axis=1), self.unit_vectors, transpose_b=True)
        # The word itself scores highest: push it below every other word before taking the top ones.
        itself = tf.one_hot(tf.maximum(ids, 0), tf.shape(vectors)[0], on_value=-3.0, off_value=0.0)
        scores, neighbours = tf.math.top_k(similarity + itself, k=self.topn)
        return {
            "neighbours": tf.where(known[:, None], tf.gather(self.words, neighbours), ""),
            "scores": tf.where(known[:, None], scores, 0.0),
            "vector": vector,
            "known": known,
        }
