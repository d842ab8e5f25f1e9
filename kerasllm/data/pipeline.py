"""tf.data input pipelines for seq2seq, classification and language modelling, bucketed by length.

Every pipeline runs the same steps: tokenize in the graph (in batches of texts, then unbatch:
per-example tokenization is much slower) -> add [START]/[END] -> truncate -> cache -> seeded shuffle
-> bucket by length with token-based batching -> prefetch. The first epoch pays for tokenization;
later epochs read the cache.

Bucketing: each example goes to the bucket with the smallest padded length that holds it (lengths
2, 4, ..., 16, 20, ..., 32, 40, ..., `max_length` by default), and a bucket padded to L holds
`tokens_per_batch // L` sequences. So batch_size x padded_length <= tokens_per_batch for every
batch, padding stays small, and a jit-compiled model sees a small fixed set of sequence lengths
(16 up to 64; plus one smaller batch per bucket at the end of an epoch unless
`drop_remainder=True`). All ids are int32, padded with PAD_ID (0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from kerasllm.data.corpus import LabelledCorpus, ParallelCorpus, TextCorpus
from kerasllm.data.tokenizer import END_ID, PAD_ID, START_ID, SubwordTokenizer

_TOKENIZE_BATCH = 1024


def default_bucket_lengths(max_length: int) -> list[int]:
    """Padded lengths 2, 4, ..., 16, 20, ..., 32, 40, ..., 64, 80, ... up to `max_length`.

    Each step is a power of two between an eighth and a quarter of the length, so bucketing pads a
    sequence by less than a quarter of its length while keeping few shapes (16 up to 64).

    Example:
        >>> default_bucket_lengths(40)
        [2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40]
    """
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    lengths, length = [], 2
    while length < max_length:
        lengths.append(length)
        length += max(2, 2 ** (length.bit_length() - 3))
    return lengths + [max_length]


def make_seq2seq_dataset(
    corpus_or_pairs: ParallelCorpus | Iterable[tuple[str, str]],
    source_tokenizer: SubwordTokenizer,
    target_tokenizer: SubwordTokenizer,
    *,
    max_length: int = 64,
    tokens_per_batch: int = 4096,
    bucket_lengths: Sequence[int] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of `((encoder_tokens, decoder_inputs), decoder_targets)` for teacher-forced training.

    encoder_tokens are the source ids (no [START]/[END]); decoder_inputs = [START] + target ids;
    decoder_targets = target ids + [END]. Each side is truncated to at most `max_length` ids, and the
    encoder and decoder tensors of a batch are padded to the same bucket length.

    Args:
        corpus_or_pairs: a ParallelCorpus or (source, target) string pairs.
        source_tokenizer: tokenizer of the source language.
        target_tokenizer: tokenizer of the target language (may be the same object).
        max_length: longest sequence, in ids, on either side.
        tokens_per_batch: budget of padded positions per batch and side (batch x length).
        bucket_lengths: the padded sequence lengths, one per bucket (values >= max_length are cut and
            max_length is always the last); default `default_bucket_lengths(max_length)`.
        shuffle: shuffle examples (seeded, reshuffled every epoch) before bucketing.
        seed: shuffle seed.
        drop_remainder: drop each bucket's last, smaller batch (fixed batch shapes for XLA).

    Returns:
        A dataset of `((int32 [B, L], int32 [B, L]), int32 [B, L])`.

    Example:
        >>> dataset = make_seq2seq_dataset(load("sample"), en_tokenizer, fr_tokenizer, tokens_per_batch=2048)  # doctest: +SKIP
        >>> (encoder_tokens, decoder_inputs), decoder_targets = next(iter(dataset))  # doctest: +SKIP
    """
    sources, targets = _columns(corpus_or_pairs, ParallelCorpus, lambda c: (c.sources, c.targets), width=2)

    def encode(source: tf.Tensor, target: tf.Tensor):
        target_ids = target_tokenizer.tokenize(target)[:, : max_length - 1]
        return (source_tokenizer.tokenize(source)[:, :max_length], _prepend(START_ID, target_ids)), _append(
            target_ids, END_ID
        )

    def longer_side(inputs, decoder_targets):
        encoder_tokens, decoder_inputs = inputs
        return tf.maximum(tf.shape(encoder_tokens)[0], tf.shape(decoder_inputs)[0])

    return _bucketed(
        _tokenized((sources, targets), encode),
        longer_side,
        count=len(sources),
        max_length=max_length,
        tokens_per_batch=tokens_per_batch,
        bucket_lengths=bucket_lengths,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
    )


def make_classification_dataset(
    corpus_or_examples: LabelledCorpus | Iterable[tuple[str, int]],
    tokenizer: SubwordTokenizer,
    *,
    max_length: int = 128,
    tokens_per_batch: int = 4096,
    bucket_lengths: Sequence[int] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of `(tokens, label)`: text ids (no [START]/[END]) truncated to `max_length`, int32 labels.

    Args are as for `make_seq2seq_dataset`, with `corpus_or_examples` a LabelledCorpus or
    (text, label) pairs.

    Returns:
        A dataset of `(int32 [B, L], int32 [B])`.

    Example:
        >>> dataset = make_classification_dataset(load("sst2", "dev"), tokenizer)  # doctest: +SKIP
    """
    texts, labels = _columns(corpus_or_examples, LabelledCorpus, lambda c: (c.texts, c.labels), width=2)

    def encode(text: tf.Tensor, label: tf.Tensor):
        return tokenizer.tokenize(text)[:, :max_length], tf.cast(label, tf.int32)

    return _bucketed(
        _tokenized((texts, labels), encode),
        lambda tokens, label: tf.shape(tokens)[0],
        count=len(texts),
        max_length=max_length,
        tokens_per_batch=tokens_per_batch,
        bucket_lengths=bucket_lengths,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
    )


def make_language_model_dataset(
    corpus_or_texts: TextCorpus | Iterable[str],
    tokenizer: SubwordTokenizer,
    *,
    max_length: int = 128,
    tokens_per_batch: int = 4096,
    bucket_lengths: Sequence[int] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of `(tokens, next_tokens)` for next-token prediction, one example per text.

    With s = [START] + ids + [END] cut to `max_length + 1` ids: tokens = s[:-1], next_tokens = s[1:].

    Args are as for `make_seq2seq_dataset`, with `corpus_or_texts` a TextCorpus (its non-blank
    `lines` are the examples) or strings.

    Returns:
        A dataset of `(int32 [B, L], int32 [B, L])`.

    Example:
        >>> dataset = make_language_model_dataset(load("tiny_shakespeare"), tokenizer)  # doctest: +SKIP
    """
    (texts,) = _columns(corpus_or_texts, TextCorpus, lambda c: (c.lines,), width=1)

    def encode(text: tf.Tensor):
        sequence = _append(_prepend(START_ID, tokenizer.tokenize(text)), END_ID)[:, : max_length + 1]
        return sequence[:, :-1], sequence[:, 1:]

    return _bucketed(
        _tokenized((texts,), encode),
        lambda tokens, next_tokens: tf.shape(tokens)[0],
        count=len(texts),
        max_length=max_length,
        tokens_per_batch=tokens_per_batch,
        bucket_lengths=bucket_lengths,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
    )


@dataclass
class BatchStats:
    """What one pass over a bucketed dataset produced, counted on the model inputs (`element[0]`).

    Args:
        batches: number of batches.
        examples: number of examples.
        shapes: distinct padded input shapes, (batch, length).
        mean_tokens_per_batch: mean padded positions (batch x length) per batch and input tensor.
        max_tokens_per_batch: the largest batch x length seen.
        padding_share: padded positions / all positions over the input tensors.
    """

    batches: int
    examples: int
    shapes: set[tuple[int, int]]
    mean_tokens_per_batch: float
    max_tokens_per_batch: int
    padding_share: float


def measure_batches(dataset: tf.data.Dataset) -> BatchStats:
    """Iterate `dataset` once and measure batch shapes, token budget use and padding share.

    Example:
        >>> measure_batches(dataset).padding_share  # doctest: +SKIP
        0.12
    """
    batches = examples = padded = positions = 0
    shapes, sizes = set(), []
    for element in dataset:
        inputs = [tensor.numpy() for tensor in tf.nest.flatten(element[0])]
        batches += 1
        examples += inputs[0].shape[0]
        shapes.update(tensor.shape for tensor in inputs)
        sizes.extend(tensor.size for tensor in inputs)
        padded += sum(int(np.count_nonzero(tensor == PAD_ID)) for tensor in inputs)
        positions += sum(tensor.size for tensor in inputs)
    return BatchStats(
        batches=batches,
        examples=examples,
        shapes=shapes,
        mean_tokens_per_batch=float(np.mean(sizes)) if sizes else 0.0,
        max_tokens_per_batch=max(sizes, default=0),
        padding_share=padded / positions if positions else 0.0,
    )


def _columns(data, corpus_type: type, fields: Callable, width: int) -> tuple[list, ...]:
    """The `width` columns of a corpus, or of plain records (tuples, or strings when width is 1)."""
    if isinstance(data, corpus_type):
        columns = tuple(list(column) for column in fields(data))
    else:
        records = list(data)
        columns = (records,) if width == 1 else tuple(list(column) for column in zip(*records))
    if not columns or not columns[0]:
        raise ValueError("no examples to build a dataset from")
    return columns


def _prepend(token_id: int, ids: tf.RaggedTensor) -> tf.RaggedTensor:
    return tf.concat([_column(token_id, ids), ids], axis=1)


def _append(ids: tf.RaggedTensor, token_id: int) -> tf.RaggedTensor:
    return tf.concat([ids, _column(token_id, ids)], axis=1)


def _column(token_id: int, like: tf.RaggedTensor) -> tf.RaggedTensor:
    column = tf.fill([like.nrows(), 1], tf.constant(token_id, like.dtype))
    return tf.RaggedTensor.from_tensor(column, row_splits_dtype=like.row_splits.dtype)


def _tokenized(columns: tuple[list, ...], encode: Callable) -> tf.data.Dataset:
    """Examples encoded by `encode`, which works on a batch of each column and returns ragged ids."""
    dataset = tf.data.Dataset.from_tensor_slices(tuple(tf.constant(column) for column in columns))
    dataset = dataset.batch(_TOKENIZE_BATCH).map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    # Unbatched ragged rows are typed as rank-1 RaggedTensorSpecs, which padded batching rejects;
    # tf.identity retypes them as the dense tensors they are.
    return dataset.map(_as_dense, num_parallel_calls=tf.data.AUTOTUNE)


def _as_dense(*element):
    return tf.nest.map_structure(tf.identity, element)


def _bucketed(
    dataset: tf.data.Dataset,
    length_of: Callable,
    *,
    count: int,
    max_length: int,
    tokens_per_batch: int,
    bucket_lengths: Sequence[int] | None,
    shuffle: bool,
    seed: int,
    drop_remainder: bool,
) -> tf.data.Dataset:
    if tokens_per_batch < max_length:
        raise ValueError(f"tokens_per_batch ({tokens_per_batch}) must be at least max_length ({max_length})")
    if bucket_lengths is None:
        lengths = default_bucket_lengths(max_length)
    else:
        lengths = sorted({length for length in bucket_lengths if 0 < length < max_length} | {max_length})
    # With pad_to_bucket_boundary a bucket is padded to its boundary - 1. The extra last batch size
    # is for lengths beyond the last boundary, which truncation rules out.
    boundaries = [length + 1 for length in lengths]
    batch_sizes = [tokens_per_batch // length for length in lengths] + [1]
    dataset = dataset.cache()
    if shuffle:
        # The cache holds every example, so a full-size buffer costs no extra work and shuffles uniformly.
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.bucket_by_sequence_length(
        length_of, boundaries, batch_sizes, pad_to_bucket_boundary=True, drop_remainder=drop_remainder
    )
    # Bucketing hides the number of batches, yet it is the same every epoch (which bucket an example
    # falls in does not depend on the order). One counting pass, which also fills the cache, lets
    # Keras show a real progress bar and end epochs cleanly instead of "Unknown" and out-of-data warnings.
    batches = int(dataset.reduce(0, lambda count, _: count + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


def make_packed_blocks_dataset(
    token_ids: np.ndarray | Sequence[int],
    block_size: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of `(tokens, next_tokens)` cut from one token stream in contiguous blocks (language modelling).

    The stream is cut into non-overlapping blocks of `block_size + 1` ids that share their last id with the next
    block's first: tokens = s[o + k·block_size : + block_size], next_tokens the same shifted by one. With `shuffle`,
    every pass over the dataset (every Keras epoch) draws a fresh offset o in [0, block_size), so the block
    boundaries move from epoch to epoch, and shuffles the blocks; without it, o = 0 and the blocks come in order,
    covering the stream once (the whole validation split). Every pass has the same number of batches.

    Args:
        token_ids: the stream, 1-D ints (a text's ids, or documents joined by a separator id).
        block_size: tokens per example (the model's context).
        batch_size: examples per batch (the last, smaller batch is kept when not shuffling).
        shuffle: random offsets and order (training) or the stream in order (evaluation).
        seed: the offsets' and the order's seed.
        repeat: repeat the passes forever (for `fit(steps_per_epoch=...)`).

    Returns:
        A dataset of `(int32 [B, block_size], int32 [B, block_size])`.

    Raises:
        ValueError: the stream is too short for one block.

    Example:
        >>> dataset = make_packed_blocks_dataset(np.arange(1, 1000), block_size=64, batch_size=12)
    """
    stream = tf.constant(np.asarray(token_ids, dtype=np.int32))
    count = (int(stream.shape[0]) - 1) // block_size
    if shuffle:  # the same count for every offset: the stream's last block_size - 1 ids may be left out
        count = (int(stream.shape[0]) - block_size) // block_size
    if count < 1:
        raise ValueError(f"{int(stream.shape[0])} tokens are too few for one block of {block_size} + 1")
    if shuffle:
        offsets = tf.data.Dataset.range(block_size).shuffle(block_size, seed=seed, reshuffle_each_iteration=True)
        offsets = offsets.take(1)
    else:
        offsets = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    starts = offsets.flat_map(lambda offset: tf.data.Dataset.range(count).map(lambda k: offset + k * block_size))
    if shuffle:
        starts = starts.shuffle(count, seed=seed + 1, reshuffle_each_iteration=True)
    if repeat:
        starts = starts.repeat()

    def block(start: tf.Tensor):
        start = tf.cast(start, tf.int32)
        return stream[start : start + block_size], stream[start + 1 : start + block_size + 1]

    dataset = starts.map(block, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=shuffle)
    if not repeat:  # flat_map hides the length; Keras reads a finite pass that reports none as running out of data
        batches = count // batch_size if shuffle else -(-count // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)
