"""word2vec training examples made in the graph: word tokens, frequency subsampling, dynamic windows, negatives.

The steps follow Mikolov et al. (2013) as word2vec.c and gensim implement them, so that a gensim model trained on
the same token lists with the same settings is a like-for-like anchor:

1. `word_tokens`: lowercased words and single punctuation marks (`WORD_PATTERN`), in the graph.
2. `count_words` → `Vocabulary`: words seen at least `min_count` times, most frequent first (ties by word), so
   the first rows are the frequent words an analogy test restricts itself to. Out-of-vocabulary words are
   dropped from the sentences before windows are taken, as word2vec does.
3. Every epoch, afresh: each occurrence of word w is kept with probability (√(f/t) + 1)·t/f, f = count(w) /
   total, t = `subsample` (word2vec.c's formula); the dropped ones leave the sentence, so windows reach further.
4. Dynamic windows: each kept position draws its window b uniformly from 1..`window`; skip-gram pairs it with
   every word within b positions in its sentence; CBOW makes one example of it and those words.
5. Negatives: `negatives` ids per example drawn from the unigram distribution raised to `ns_exponent` (3/4).
   A negative that equals the example's target is not trained (label −1), as word2vec skips it.

An example is `({"input_words": [C], "input_mask": [C], "candidates": [1 + negatives]}, labels [1 + negatives])`:
skip-gram has C = 1 (the centre word), CBOW C = 2·window (the window, masked); candidates are the target (the
context word; for CBOW the centre) then the negatives, labels 1, then 0 (or −1). `word2vec_dataset` batches them.

Why in tf.data and not NumPy (the TF tutorial materialises its pairs once with `skipgrams`): the subsampling and
the windows must be redrawn every epoch, and a whole epoch's pairs are a handful of vectorised ops.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from kerasllm.data.tokenizer import _replace_invalid_utf8

# A word is a run of letters, digits or underscores; any other non-space character is a token of its own.
WORD_PATTERN = r"[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s\p{Z}\x{0B}\x{85}]"
_WHITESPACE = r"[\s\p{Z}\x{0B}\x{85}]+"
_TOKENIZE_BATCH = 4096
ARCHITECTURES = ("skipgram", "cbow")


def word_tokens(texts: tf.Tensor | Sequence[str]) -> tf.RaggedTensor:
    """The lowercased word and punctuation tokens of each text (graph ops; invalid UTF-8 becomes U+FFFD).

    Args:
        texts: a 1-D string tensor or a list of strings.

    Returns:
        A string RaggedTensor [texts, (tokens)].

    Example:
        >>> word_tokens(["Don't stop!"]).to_list()
        [[b'don', b"'", b't', b'stop', b'!']]
    """
    lowered = tf.strings.lower(_replace_invalid_utf8(tf.convert_to_tensor(texts, tf.string)), encoding="utf-8")
    return tf_text.regex_split(
        lowered, delim_regex_pattern=f"{_WHITESPACE}|{WORD_PATTERN}", keep_delim_regex_pattern=WORD_PATTERN
    )


def _token_batches(texts: Iterable[str]) -> Iterator[tf.RaggedTensor]:
    # Batches of texts: one graph call per text is far slower.
    texts = list(texts)
    for start in range(0, len(texts), _TOKENIZE_BATCH):
        yield word_tokens(texts[start : start + _TOKENIZE_BATCH])


def tokenized(texts: Iterable[str]) -> list[list[str]]:
    """Each text's `word_tokens`, as Python strings (the token lists another word2vec, e.g. gensim, reads)."""
    return [[token.decode("utf-8") for token in row] for batch in _token_batches(texts) for row in batch.to_list()]


def count_words(texts: Iterable[str]) -> Counter[str]:
    """How often each `word_tokens` token occurs in `texts`."""
    counts: Counter[str] = Counter()
    for batch in _token_batches(texts):
        counts.update(token.decode("utf-8") for token in batch.flat_values.numpy())
    return counts


@dataclass(frozen=True)
class Vocabulary:
    """The words a word2vec model has vectors for, most frequent first, with their corpus counts.

    Args:
        words: the words; a word's index is its id.
        counts: int64 [len(words)], each word's number of occurrences in the corpus.

    Example:
        >>> vocabulary = Vocabulary.from_counts(count_words(["a b a", "c a b"]), min_count=2)
        >>> vocabulary.words, vocabulary.counts.tolist()
        (['a', 'b'], [3, 2])
    """

    words: list[str]
    counts: np.ndarray

    @classmethod
    def from_counts(cls, counts: Counter[str], min_count: int = 5, max_size: int | None = None) -> Vocabulary:
        """The words counted at least `min_count` times (at most `max_size` of them), most frequent first.

        Raises:
            ValueError: no word is frequent enough.
        """
        kept = sorted(((word, n) for word, n in counts.items() if n >= min_count), key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            kept = kept[:max_size]
        if not kept:
            raise ValueError(
                f"no word occurs {min_count} times or more in a corpus of {sum(counts.values())} tokens: "
                "give more text or a lower min_count"
            )
        return cls([word for word, _ in kept], np.array([n for _, n in kept], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def vocabulary_size(self) -> int:
        return len(self.words)

    def save(self, path: str | os.PathLike) -> None:
        """One `word<TAB>count` line per word, in id order (a token never holds whitespace)."""
        lines = (f"{word}\t{count}\n" for word, count in zip(self.words, self.counts.tolist()))
        Path(path).write_text("".join(lines), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """A vocabulary `save` wrote.

        Raises:
            FileNotFoundError: no such file.
            ValueError: a line that is not `word<TAB>count`, naming the line.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no vocabulary file at {path.resolve()}")
        words, counts = [], []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            word, _, count = line.partition("\t")
            if not word or not count.isdigit():
                raise ValueError(f"{path}, line {number}: expected 'word<TAB>count', got {line[:80]!r}")
            words.append(word)
            counts.append(int(count))
        if not words:
            raise ValueError(f"{path} holds no words")
        return cls(words, np.array(counts, dtype=np.int64))

    def encode(self, texts: Sequence[str]) -> tf.RaggedTensor:
        """Each text's in-vocabulary token ids, int32 [texts, (ids)]: unknown words are left out."""
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.words), tf.range(len(self.words), dtype=tf.int32), tf.string, tf.int32
            ),
            default_value=-1,
        )
        rows = []
        for batch in _token_batches(texts):
            ids = tf.ragged.map_flat_values(table.lookup, batch)
            rows.append(tf.ragged.boolean_mask(ids, ids >= 0))
        return tf.concat(rows, axis=0)

    def keep_probabilities(self, subsample: float) -> np.ndarray:
        """float32 [V]: the chance an occurrence of each word survives subsampling (1 with `subsample` 0)."""
        if subsample <= 0:
            return np.ones(len(self), np.float32)
        threshold = subsample * float(self.counts.sum())
        return np.minimum(1.0, (np.sqrt(self.counts / threshold) + 1) * threshold / self.counts).astype(np.float32)

    def negative_distribution(self, ns_exponent: float = 0.75) -> np.ndarray:
        """float64 [V]: the cumulative noise distribution, counts ** ns_exponent normalised."""
        weights = self.counts.astype(np.float64) ** ns_exponent
        return np.cumsum(weights / weights.sum())


def _subsampled(sentences: tf.RaggedTensor, keep_probability: tf.Tensor, seed: tf.Tensor) -> tf.RaggedTensor:
    ids = sentences.flat_values
    draws = tf.random.stateless_uniform(tf.shape(ids), seed)
    return tf.ragged.boolean_mask(
        sentences,
        tf.RaggedTensor.from_row_splits(draws < tf.gather(keep_probability, ids), sentences.row_splits, validate=False),
    )


def _windows(sentences: tf.RaggedTensor, window: int, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The flat ids, the sentence of each, and each position's window size b in 1..window."""
    ids = sentences.flat_values
    rows = sentences.value_rowids()
    spans = tf.random.stateless_uniform(tf.shape(ids), seed, minval=1, maxval=window + 1, dtype=tf.int32)
    return ids, rows, spans


def skipgram_pairs(
    sentences: tf.RaggedTensor, keep_probability: tf.Tensor, window: int, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """One epoch of (centre, context) id pairs, int32 [P] each, in sentence order (subsampled, dynamic windows).

    Args:
        sentences: int32 [sentences, (ids)], in-vocabulary ids.
        keep_probability: float32 [V], from `Vocabulary.keep_probabilities`.
        window: the largest distance between a centre and its context.
        seed: int32 [2], a stateless seed (a new one each epoch).
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    ids, rows, spans = _windows(_subsampled(sentences, keep_probability, seeds[0]), window, seeds[1])
    centres, contexts = [], []
    for distance in range(1, window + 1):
        same_sentence = tf.equal(rows[distance:], rows[:-distance])
        # The later word as centre, its context `distance` before it; then the earlier word as centre.
        before = same_sentence & (spans[distance:] >= distance)
        after = same_sentence & (spans[:-distance] >= distance)
        centres += [tf.boolean_mask(ids[distance:], before), tf.boolean_mask(ids[:-distance], after)]
        contexts += [tf.boolean_mask(ids[:-distance], before), tf.boolean_mask(ids[distance:], after)]
    return tf.concat(centres, 0), tf.concat(contexts, 0)


def cbow_windows(
    sentences: tf.RaggedTensor, keep_probability: tf.Tensor, window: int, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One epoch of CBOW examples: centre ids int32 [N], their windows int32 [N, 2·window] and the windows' mask.

    A centre with no word within its window (a one-word sentence) makes no example. Arguments as
    `skipgram_pairs`.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    ids, rows, spans = _windows(_subsampled(sentences, keep_probability, seeds[0]), window, seeds[1])
    length = tf.shape(ids)[0]
    offsets = tf.constant([d for d in range(-window, window + 1) if d != 0], tf.int32)
    positions = tf.range(length)[:, None] + offsets[None, :]
    inside = (positions >= 0) & (positions < length)
    clipped = tf.clip_by_value(positions, 0, tf.maximum(length - 1, 0))
    mask = inside & tf.equal(tf.gather(rows, clipped), rows[:, None]) & (tf.abs(offsets)[None, :] <= spans[:, None])
    has_context = tf.reduce_any(mask, axis=1)
    windows = tf.where(mask, tf.gather(ids, clipped), 0)
    return tf.boolean_mask(ids, has_context), tf.boolean_mask(windows, has_context), tf.boolean_mask(mask, has_context)


def word2vec_dataset(
    sentences: tf.RaggedTensor,
    vocabulary: Vocabulary,
    *,
    architecture: str = "skipgram",
    window: int = 5,
    negatives: int = 5,
    subsample: float = 1e-3,
    ns_exponent: float = 0.75,
    batch_size: int = 1024,
    steps_per_epoch: int | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of word2vec examples (see the module docstring), every epoch subsampled and windowed afresh.

    Epochs of the corpus follow each other without a boundary, in sentence order within an epoch (as word2vec reads
    its corpus); the batches are full (`drop_remainder`). With `steps_per_epoch` (e.g. `examples_per_epoch(...) //
    batch_size`), each pass over the dataset is that many batches from a stream with a new seed, so
    `model.fit(dataset, epochs=N)` sees N different epochs; without it, the stream is endless.

    Args:
        sentences: int32 [sentences, (ids)], from `Vocabulary.encode`.
        vocabulary: the words and their counts (subsampling and the noise distribution read the counts).
        architecture: `"skipgram"` or `"cbow"`.
        window: the largest window; each position draws its own from 1..window.
        negatives: noise words per example.
        subsample: word2vec's `sample` threshold t; 0 keeps every word.
        ns_exponent: the power of the unigram counts in the noise distribution.
        batch_size: examples per batch.
        steps_per_epoch: batches per pass, or None for one endless stream.
        seed: every draw (subsampling, windows, negatives) follows from it.

    Returns:
        A dataset of `(features, labels)` as the module docstring says.

    Raises:
        ValueError: an unknown architecture, or window / negatives / batch_size below 1.

    Example:
        >>> vocabulary = Vocabulary.from_counts(count_words(texts), min_count=5)
        >>> dataset = word2vec_dataset(vocabulary.encode(texts), vocabulary, window=5, negatives=5)
    """
    _check_settings(architecture, window, negatives, batch_size)
    keep_probability = tf.constant(vocabulary.keep_probabilities(subsample))
    cumulative = tf.constant(vocabulary.negative_distribution(ns_exponent))
    vocabulary_size = len(vocabulary)

    def epoch(epoch_seed: tf.Tensor) -> tf.data.Dataset:
        if architecture == "skipgram":
            centres, contexts = skipgram_pairs(sentences, keep_probability, window, epoch_seed)
            inputs, mask, targets = centres[:, None], tf.ones_like(centres[:, None], tf.bool), contexts
        else:
            targets, inputs, mask = cbow_windows(sentences, keep_probability, window, epoch_seed)
        # Cut into whole batches in the graph: batching slices one example at a time costs ~2 µs an example.
        batches = tf.shape(targets)[0] // batch_size
        examples = tf.data.Dataset.from_tensor_slices(
            tuple(_in_batches(tensor, batches, batch_size) for tensor in (inputs, mask, targets))
        )
        noise_seed = tf.random.experimental.stateless_fold_in(epoch_seed, -1)
        return examples.enumerate().map(
            lambda step, batch: with_negatives(batch, noise_seed, step), num_parallel_calls=tf.data.AUTOTUNE
        )

    def with_negatives(batch: tuple[tf.Tensor, ...], noise_seed: tf.Tensor, step: tf.Tensor):
        inputs, mask, targets = batch
        draw_seed = tf.random.experimental.stateless_fold_in(noise_seed, step)
        uniform = tf.random.stateless_uniform([tf.shape(targets)[0] * negatives], draw_seed, dtype=tf.float64)
        noise = tf.cast(tf.searchsorted(cumulative, uniform, side="right"), tf.int32)
        noise = tf.reshape(tf.minimum(noise, vocabulary_size - 1), [-1, negatives])
        targets = targets[:, None]
        labels = tf.concat([tf.ones_like(targets, tf.float32), tf.where(tf.equal(noise, targets), -1.0, 0.0)], axis=1)
        return {"input_words": inputs, "input_mask": mask, "candidates": tf.concat([targets, noise], axis=1)}, labels

    def endless(stream_seed: tf.Tensor) -> tf.data.Dataset:
        seeds = tf.data.Dataset.counter().map(
            lambda index: tf.random.experimental.stateless_fold_in(stream_seed, index)
        )
        return seeds.flat_map(epoch)

    if steps_per_epoch is None:
        return endless(_first_seed(seed)).prefetch(tf.data.AUTOTUNE)
    # Keras iterates a dataset of known length afresh each epoch: every pass draws its own stream seed.
    passes = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    dataset = passes.flat_map(
        lambda draw: endless(tf.random.experimental.stateless_fold_in(_first_seed(seed), draw)).take(steps_per_epoch)
    )
    return dataset.apply(tf.data.experimental.assert_cardinality(steps_per_epoch)).prefetch(tf.data.AUTOTUNE)


def examples_per_epoch(
    sentences: tf.RaggedTensor,
    vocabulary: Vocabulary,
    *,
    architecture: str = "skipgram",
    window: int = 5,
    subsample: float = 1e-3,
    seed: int = 0,
) -> int:
    """The number of examples one epoch of `word2vec_dataset` makes with these settings (each epoch's draws vary it a
    little)."""
    keep_probability = tf.constant(vocabulary.keep_probabilities(subsample))
    epoch_seed = tf.random.experimental.stateless_fold_in(_first_seed(seed), 0)
    if architecture == "skipgram":
        return int(skipgram_pairs(sentences, keep_probability, window, epoch_seed)[0].shape[0])
    return int(cbow_windows(sentences, keep_probability, window, epoch_seed)[0].shape[0])


def _in_batches(tensor: tf.Tensor, batches: tf.Tensor, batch_size: int) -> tf.Tensor:
    return tf.reshape(tensor[: batches * batch_size], tf.concat([[batches, batch_size], tf.shape(tensor)[1:]], 0))


def _first_seed(seed: int) -> tf.Tensor:
    return tf.constant([seed, 0], tf.int64)


def _check_settings(architecture: str, window: int, negatives: int, batch_size: int) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    for name, value in (("window", window), ("negatives", negatives), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
