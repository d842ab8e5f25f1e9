"""Bucketed tf.data pipelines: token budget, padding, contents, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import DATA_DIR, requires_data

from kerasllm.data import registry
from kerasllm.data.corpus import LabelledCorpus, TextCorpus
from kerasllm.data.pipeline import (
    default_bucket_lengths,
    make_classification_dataset,
    make_language_model_dataset,
    make_seq2seq_dataset,
    measure_batches,
)
from kerasllm.data.tokenizer import END_ID, PAD_ID, START_ID, SubwordTokenizer, normalize, train_wordpiece_vocabulary


@pytest.fixture(scope="module")
def sample():
    return registry.load("sample", "train")


@pytest.fixture(scope="module")
def tokenizers(sample):
    return tuple(
        SubwordTokenizer(train_wordpiece_vocabulary(side, 2000, min_frequency=2))
        for side in (sample.sources, sample.targets)
    )


def assert_within_budget(dataset, tokens_per_batch: int, max_length: int) -> None:
    allowed = set(default_bucket_lengths(max_length))
    for inputs, _ in dataset:
        for tensor in tf.nest.flatten(inputs):
            batch, length = tensor.shape
            assert batch * length <= tokens_per_batch
            assert length in allowed


def test_default_bucket_lengths():
    assert default_bucket_lengths(64) == [2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64]
    assert default_bucket_lengths(30)[-2:] == [28, 30]
    assert default_bucket_lengths(1) == [1]


def test_seq2seq_batches_stay_within_the_token_budget_and_pad_little(sample, tokenizers):
    dataset = make_seq2seq_dataset(sample, *tokenizers, max_length=64, tokens_per_batch=1024)
    assert_within_budget(dataset, 1024, 64)
    stats = measure_batches(dataset)
    print(
        f"\nsample en-fr: {stats.batches} batches, padding share {stats.padding_share:.1%}, shapes {sorted(stats.shapes)}"
    )
    assert stats.examples == len(sample)
    # Measured 25.6%: Tatoeba sentences are 4-10 pieces, so one piece of length difference between
    # the English and French side is already 10-25% padding on the shorter side.
    assert stats.padding_share < 0.30
    assert stats.max_tokens_per_batch <= 1024 and stats.mean_tokens_per_batch > 0.6 * 1024


@requires_data
@pytest.mark.full_data
def test_multi30k_padding_share():
    corpus = registry.load("multi30k", "train", "en-de", DATA_DIR)
    source, target = (
        SubwordTokenizer(train_wordpiece_vocabulary(side, 8000)) for side in (corpus.sources, corpus.targets)
    )
    dataset = make_seq2seq_dataset(corpus, source, target, max_length=64, tokens_per_batch=4096)
    assert_within_budget(dataset, 4096, 64)
    stats = measure_batches(dataset)
    print(f"\nMulti30K en-de train: {stats.batches} batches, padding share {stats.padding_share:.1%}")
    assert stats.examples == 29000
    assert stats.padding_share < 0.16  # measured 13.6%


def test_seq2seq_contents(sample, tokenizers):
    source_tokenizer, target_tokenizer = tokenizers
    dataset = make_seq2seq_dataset(sample, source_tokenizer, target_tokenizer, tokens_per_batch=512, seed=3)
    (encoder_tokens, decoder_inputs), decoder_targets = next(iter(dataset))
    assert encoder_tokens.dtype == decoder_inputs.dtype == decoder_targets.dtype == tf.int32
    assert encoder_tokens.shape == decoder_inputs.shape == decoder_targets.shape
    enc, dec_in, dec_out = encoder_tokens.numpy(), decoder_inputs.numpy(), decoder_targets.numpy()
    assert (dec_in[:, 0] == START_ID).all()
    assert not np.isin(enc, [START_ID, END_ID]).any()
    for row_in, row_out in zip(dec_in, dec_out):
        n = int(np.count_nonzero(row_out))
        assert row_out[n - 1] == END_ID and (row_out[n:] == PAD_ID).all()
        np.testing.assert_array_equal(row_in[1:n], row_out[: n - 1])  # targets are inputs shifted by one
    pairs = set(zip(normalize(tf.constant(sample.sources)).numpy(), normalize(tf.constant(sample.targets)).numpy()))
    decoded = zip(
        source_tokenizer.detokenize(encoder_tokens).numpy(), target_tokenizer.detokenize(decoder_inputs).numpy()
    )
    assert all(pair in pairs for pair in decoded)


def test_truncation_keeps_every_example(sample, tokenizers):
    dataset = make_seq2seq_dataset(sample, *tokenizers, max_length=5, tokens_per_batch=100)
    stats = measure_batches(dataset)
    assert stats.examples == len(sample)
    assert max(length for _, length in stats.shapes) == 5
    for (_, decoder_inputs), decoder_targets in dataset.take(5):
        assert (decoder_inputs.numpy()[:, 0] == START_ID).all()
        assert decoder_targets.shape[1] <= 5


def test_shuffle_is_seeded_and_reshuffles_each_epoch(sample, tokenizers):
    def first_batches(dataset):
        return [batch[1].numpy().tolist() for batch in dataset.take(3)]

    first = make_seq2seq_dataset(sample, *tokenizers, tokens_per_batch=512, seed=7)
    second = make_seq2seq_dataset(sample, *tokenizers, tokens_per_batch=512, seed=7)
    assert first_batches(first) == first_batches(second)
    assert first_batches(first) != first_batches(first)  # next epoch: new order
    unshuffled = make_seq2seq_dataset(list(sample)[:300], *tokenizers, tokens_per_batch=512, shuffle=False)
    assert first_batches(unshuffled) == first_batches(unshuffled)


def test_drop_remainder_gives_fixed_batch_sizes(sample, tokenizers):
    dataset = make_seq2seq_dataset(sample, *tokenizers, tokens_per_batch=512, drop_remainder=True)
    shapes = measure_batches(dataset).shapes
    assert all(batch == 512 // length for batch, length in shapes)


def test_classification_dataset(tokenizers):
    corpus = LabelledCorpus(["Tom is happy.", "I hate this.", "Go!"] * 40, [1, 0, 1] * 40, ["negative", "positive"])
    dataset = make_classification_dataset(corpus, tokenizers[0], max_length=16, tokens_per_batch=64)
    assert_within_budget(dataset, 64, 16)
    seen = []
    for tokens, labels in dataset:
        assert tokens.dtype == labels.dtype == tf.int32 and labels.shape == (tokens.shape[0],)
        seen += list(zip(tokenizers[0].detokenize(tokens).numpy().tolist(), labels.numpy().tolist()))
    assert sorted(seen) == sorted((text.encode(), label) for text, label in corpus)
    assert measure_batches(make_classification_dataset(list(corpus), tokenizers[0])).examples == 120


def test_language_model_dataset(tokenizers):
    corpus = TextCorpus("Tom runs.\n\nI am here.\nGo!\n")
    dataset = make_language_model_dataset(corpus, tokenizers[0], max_length=8, tokens_per_batch=64, shuffle=False)
    assert measure_batches(dataset).examples == 3
    for tokens, next_tokens in dataset:
        tokens, next_tokens = tokens.numpy(), next_tokens.numpy()
        assert (tokens[:, 0] == START_ID).all()
        for row, following in zip(tokens, next_tokens):
            n = int(np.count_nonzero(row))
            np.testing.assert_array_equal(row[1:n], following[: n - 1])
            assert following[n - 1] == END_ID or n == 8


def test_bad_arguments(sample, tokenizers):
    with pytest.raises(ValueError, match="tokens_per_batch"):
        make_seq2seq_dataset(sample, *tokenizers, max_length=64, tokens_per_batch=32)
    with pytest.raises(ValueError, match="no examples"):
        make_seq2seq_dataset([], *tokenizers)
