"""word2vec (Mikolov et al., 2013): skip-gram or CBOW with negative sampling, as a Keras model.

Two tables of vectors: `word_embedding` (the word vectors one keeps) and `context_embedding` (the output
vectors, zeros at first as in word2vec.c). An example's input words (the centre for skip-gram; the window for
CBOW, masked) are averaged into h; each candidate c (the target, then the noise words) scores h · v'_c, and the
loss is negative sampling's

    −log σ(h · v'_target) − Σ_noise log σ(−h · v'_noise)

per example (`NegativeSamplingLoss`). Skip-gram is the case of one input word, so one model serves both.

Training is word2vec's: plain SGD whose learning rate decays linearly to almost nothing. word2vec.c updates after
every example with rate α; a batch of B examples with the mean loss takes the same step with rate α·B, which
`word2vec_learning_rate` returns. SGD also keeps the update sparse (only the rows a batch touches change); Adam's
dense moments would rewrite both whole tables every step.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasllm")
class NegativeSamplingLoss(keras.losses.Loss):
    """Negative sampling's loss: the sum over an example's candidates of the logistic loss, mean over examples.

    Labels are 1 (the target), 0 (a noise word) or −1 (a noise word equal to the target: not trained).

    Example:
        >>> loss = NegativeSamplingLoss()
        >>> float(loss(np.array([[1.0, 0.0, -1.0]]), np.array([[0.0, 0.0, 5.0]])))  # 2 log 2
        1.386...
    """

    def __init__(self, name: str = "negative_sampling", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = ops.cast(y_true, y_pred.dtype)
        trained = ops.cast(ops.greater_equal(labels, 0), y_pred.dtype)
        # log(1 + exp(-x)) for a target, log(1 + exp(x)) for noise: softplus of the logit signed by the label.
        losses = ops.softplus(ops.where(ops.greater(labels, 0), -y_pred, y_pred))
        return ops.sum(losses * trained, axis=-1)


@keras.saving.register_keras_serializable(package="kerasllm")
class Word2Vec(keras.Model):
    """Skip-gram / CBOW with negative sampling: input words and candidates → one logit per candidate.

    Args:
        vocabulary_size: int, the number of words.
        dim: int, the width of the word vectors. Defaults to `100`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Inputs (a dict, as `kerasllm.data.skipgrams.word2vec_dataset` makes them):
        input_words: int32 [B, C], the centre word (C = 1) or the window (CBOW).
        input_mask: bool [B, C], which input words count.
        candidates: int32 [B, K], the target, then the noise words.

    Returns:
        float32 [B, K], the logits h · v'_c.

    Example:

    ```python
    model = kerasllm.tasks.Word2Vec(vocabulary_size=1000, dim=50)
    model.compile(optimizer=keras.optimizers.SGD(word2vec_learning_rate(0.025, batch_size=1024)),
                  loss=NegativeSamplingLoss())
    model.fit(word2vec_dataset(sentences, vocabulary), steps_per_epoch=100, epochs=5)
    vectors = model.word_vectors()  # [1000, 50]
    ```
    """

    def __init__(self, vocabulary_size: int, dim: int = 100, **kwargs: Any) -> None:
        # === Layers ===
        # word2vec.c's start: words uniform in ±0.5/dim, contexts zero (so the first steps move the words little).
        self.word_embedding = keras.layers.Embedding(
            vocabulary_size,
            dim,
            embeddings_initializer=keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim),
            name="word_embedding",
        )
        self.context_embedding = keras.layers.Embedding(
            vocabulary_size, dim, embeddings_initializer="zeros", name="context_embedding"
        )

        # === Functional model ===
        input_words = keras.Input(shape=(None,), dtype="int32", name="input_words")
        input_mask = keras.Input(shape=(None,), dtype="bool", name="input_mask")
        candidates = keras.Input(shape=(None,), dtype="int32", name="candidates")
        weights = ops.cast(input_mask, "float32")[..., None]
        total = ops.sum(self.word_embedding(input_words) * weights, axis=1)
        # Each window word gets its share of h's gradient. word2vec.c gives each the whole of it, one window at a
        # time; summed over a batch of thousands of windows, a frequent word's whole-gradient updates diverge.
        hidden = total / ops.maximum(ops.sum(weights, axis=1), 1.0)
        logits = ops.einsum("bd,bkd->bk", hidden, self.context_embedding(candidates))
        super().__init__(
            inputs={"input_words": input_words, "input_mask": input_mask, "candidates": candidates},
            outputs=logits,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.dim = dim

    def word_vectors(self) -> Any:
        """The word vectors, a NumPy float32 [vocabulary_size, dim]."""
        return keras.ops.convert_to_numpy(self.word_embedding.embeddings)

    def get_config(self) -> dict[str, Any]:
        return {"vocabulary_size": self.vocabulary_size, "dim": self.dim, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Word2Vec:
        return cls(**config)


def word2vec_learning_rate(alpha: float, batch_size: int, total_steps: int, min_alpha: float = 1e-4) -> Any:
    """word2vec's per-example rate α, decaying linearly to `min_alpha`, scaled for batches of mean loss.

    Args:
        alpha: the starting per-example rate (word2vec.c and gensim: 0.025).
        batch_size: examples per batch; the mean over a batch divides each example's gradient by it.
        total_steps: batches in the whole run, over which the rate decays.
        min_alpha: the per-example rate at the end.

    Returns:
        A `keras.optimizers.schedules.PolynomialDecay` (power 1).
    """
    return keras.optimizers.schedules.PolynomialDecay(
        alpha * batch_size, max(1, total_steps), min_alpha * batch_size, power=1.0
    )
