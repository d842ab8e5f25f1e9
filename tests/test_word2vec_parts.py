"""word2vec's pieces: the in-graph examples pipeline (subsampling, dynamic windows, negatives), the vocabulary file,
the negative-sampling loss and the Keras model."""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasllm.data.skipgrams import (
    Vocabulary,
    cbow_windows,
    count_words,
    examples_per_epoch,
    skipgram_pairs,
    word2vec_dataset,
    word_tokens,
)
from kerasllm.tasks import NegativeSamplingLoss, Word2Vec, word2vec_learning_rate

SEED = tf.constant([3, 4], tf.int64)


def _vocabulary(size: int = 20) -> Vocabulary:
    return Vocabulary([f"w{i}" for i in range(size)], np.arange(size, 0, -1, dtype=np.int64) * 10)


def test_word_tokens_lowercase_split_punctuation_and_repair_utf8():
    tokens = word_tokens(["Don't STOP,\u00a0Bob!\tGo", "", b"caf\xc3\xa9 \xff"]).to_list()
    assert tokens[0] == [b"don", b"'", b"t", b"stop", b",", b"bob", b"!", b"go"]
    assert tokens[1] == []
    assert tokens[2] == ["café".encode(), "\ufffd".encode()]


def test_vocabulary_keeps_frequent_words_most_frequent_first_and_drops_unknown_words():
    counts = count_words(["b a a c", "a b d", "c"])
    vocabulary = Vocabulary.from_counts(counts, min_count=2)
    assert vocabulary.words == ["a", "b", "c"] and vocabulary.counts.tolist() == [3, 2, 2]
    assert vocabulary.encode(["b a a c", "d d", "c a"]).to_list() == [[1, 0, 0, 2], [], [2, 0]]
    assert Vocabulary.from_counts(counts, min_count=1, max_size=2).words == ["a", "b"]
    with pytest.raises(ValueError, match="lower min_count"):
        Vocabulary.from_counts(counts, min_count=10)


def test_vocabulary_file_round_trip_and_damaged_file(tmp_path):
    vocabulary = Vocabulary(["the", "café", ","], np.array([9, 5, 5]))
    vocabulary.save(tmp_path / "v.vocab")
    loaded = Vocabulary.load(tmp_path / "v.vocab")
    assert loaded.words == vocabulary.words and loaded.counts.tolist() == [9, 5, 5]
    (tmp_path / "bad.vocab").write_text("the\t9\ncafé five\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        Vocabulary.load(tmp_path / "bad.vocab")
    with pytest.raises(FileNotFoundError, match="missing.vocab"):
        Vocabulary.load(tmp_path / "missing.vocab")


def test_keep_probabilities_follow_word2vec_formula():
    vocabulary = Vocabulary(["a", "b"], np.array([9000, 1000]))
    keep = vocabulary.keep_probabilities(1e-2)
    threshold = 1e-2 * 10000
    assert keep[0] == pytest.approx((np.sqrt(9000 / threshold) + 1) * threshold / 9000)
    assert keep[1] == pytest.approx(min(1.0, (np.sqrt(1000 / threshold) + 1) * threshold / 1000))
    assert np.all(vocabulary.keep_probabilities(0) == 1)


def test_skipgram_pairs_stay_in_their_sentence_within_the_window_and_follow_the_dynamic_window():
    window = 4
    sentences = tf.ragged.constant([list(range(0, 30)), list(range(100, 130))], dtype=tf.int32)
    keep_all = tf.ones([200], tf.float32)
    distances = Counter()
    for draw in range(40):
        centres, contexts = skipgram_pairs(sentences, keep_all, window, tf.constant([draw, 0], tf.int64))
        centres, contexts = centres.numpy(), contexts.numpy()
        assert np.all((centres < 100) == (contexts < 100)), "a pair crossed a sentence boundary"
        gaps = np.abs(centres - contexts)
        assert gaps.min() >= 1 and gaps.max() <= window
        distances.update(gaps.tolist())
    # A centre's window b is uniform in 1..window, so distance d is kept with probability (window - d + 1) / window.
    shares = np.array([distances[d] for d in range(1, window + 1)], float)
    expected = np.array([(window - d + 1) / window for d in range(1, window + 1)])
    np.testing.assert_allclose(shares / shares[0], expected, atol=0.05)


def test_subsampling_keeps_each_word_at_its_probability():
    sentences = tf.ragged.constant([[0] * 5000 + [1] * 5000], dtype=tf.int32)
    keep = tf.constant([0.2, 1.0])
    centres, _ = skipgram_pairs(sentences, keep, 1, SEED)
    # With window 1 every kept word but the two ends of a run of the same word pairs twice.
    kept = np.bincount(centres.numpy(), minlength=2) / 2
    assert kept[1] == pytest.approx(5000, abs=2)
    assert kept[0] == pytest.approx(1000, rel=0.1)


def test_cbow_windows_hold_the_centres_neighbours_only():
    window = 2
    sentences = tf.ragged.constant([[10, 11, 12, 13, 14], [20], [30, 31]], dtype=tf.int32)
    centres, windows, mask = cbow_windows(sentences, tf.ones([40]), window, SEED)
    centres, windows, mask = centres.numpy(), windows.numpy(), mask.numpy()
    assert 20 not in centres, "a one-word sentence has no context"
    assert sorted(centres.tolist()) == [10, 11, 12, 13, 14, 30, 31]
    offsets = np.array([-2, -1, 1, 2])
    for centre, row, valid in zip(centres, windows, mask):
        assert valid.any()
        # Every masked-in word is the word at its offset in the same sentence (ids here count up by position).
        np.testing.assert_array_equal(row[valid], (centre + offsets)[valid])
        assert np.all(row[valid] // 10 == centre // 10)


def test_dataset_batches_negatives_and_labels():
    vocabulary = _vocabulary()
    rng = np.random.default_rng(0)
    sentences = tf.ragged.constant([rng.integers(0, 20, 40).tolist() for _ in range(50)], dtype=tf.int32)
    dataset = word2vec_dataset(
        sentences, vocabulary, window=3, negatives=4, subsample=0, batch_size=64, steps_per_epoch=30, seed=1
    )
    assert int(dataset.cardinality()) == 30
    noise, targets = [], []
    for features, labels in dataset:
        assert features["input_words"].shape == (64, 1) and features["candidates"].shape == (64, 5)
        candidates, labels = features["candidates"].numpy(), labels.numpy()
        assert np.all(labels[:, 0] == 1)
        collides = candidates[:, 1:] == candidates[:, :1]
        np.testing.assert_array_equal(labels[:, 1:], np.where(collides, -1.0, 0.0))
        noise.append(candidates[:, 1:].ravel())
        targets.append(candidates[:, 0])
    # Noise follows counts ** 0.75.
    drawn = np.bincount(np.concatenate(noise), minlength=20) / len(np.concatenate(noise))
    weights = vocabulary.counts**0.75
    np.testing.assert_allclose(drawn, weights / weights.sum(), atol=0.01)


def test_dataset_passes_differ_and_a_seed_repeats():
    vocabulary = _vocabulary()
    sentences = tf.ragged.constant([list(range(20)) * 3] * 10, dtype=tf.int32)

    def first_batches(seed: int):
        dataset = word2vec_dataset(sentences, vocabulary, batch_size=32, steps_per_epoch=3, seed=seed)
        return [
            np.concatenate([x["candidates"].numpy() for x, _ in dataset]),
            np.concatenate([x["candidates"].numpy() for x, _ in dataset]),
        ]

    first, second = first_batches(7)
    assert not np.array_equal(first, second), "a second pass must draw new windows and negatives"
    again, _ = first_batches(7)
    np.testing.assert_array_equal(first, again)


def test_examples_per_epoch_matches_the_expected_count_of_dynamic_windows():
    vocabulary = _vocabulary()
    length, window = 100, 5
    sentences = tf.ragged.constant([list(range(20)) * 5] * 20, dtype=tf.int32)
    # The pair (i, i ± d) exists when the centre's window b >= d: probability (window - d + 1) / window.
    per_sentence = sum(2 * (length - d) * (window - d + 1) / window for d in range(1, window + 1))
    skipgram = examples_per_epoch(sentences, vocabulary, window=window, subsample=0)
    assert skipgram == pytest.approx(20 * per_sentence, rel=0.03)
    assert examples_per_epoch(sentences, vocabulary, architecture="cbow", window=window, subsample=0) == 20 * length


def test_bad_settings_are_one_clear_error():
    vocabulary = _vocabulary()
    sentences = tf.ragged.constant([[1, 2, 3]], dtype=tf.int32)
    with pytest.raises(ValueError, match="architecture"):
        word2vec_dataset(sentences, vocabulary, architecture="glove")
    with pytest.raises(ValueError, match="window"):
        word2vec_dataset(sentences, vocabulary, window=0)


def test_negative_sampling_loss_sums_candidates_and_skips_label_minus_one():
    loss = NegativeSamplingLoss()
    labels = np.array([[1.0, 0.0, -1.0], [1.0, 0.0, 0.0]], "float32")
    logits = np.array([[0.0, 0.0, 50.0], [2.0, -1.0, 3.0]], "float32")
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected = np.mean([2 * softplus(0.0), softplus(-2.0) + softplus(-1.0) + softplus(3.0)])
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_model_scores_candidates_by_the_mean_input_vector_and_round_trips(tmp_path):
    model = Word2Vec(30, dim=8)
    words = np.array([[1, 2, 0]], "int32")
    mask = np.array([[True, True, False]])
    candidates = np.array([[3, 4]], "int32")
    model.context_embedding.embeddings.assign(np.random.default_rng(0).normal(size=(30, 8)).astype("float32"))
    logits = keras.ops.convert_to_numpy(model({"input_words": words, "input_mask": mask, "candidates": candidates}))
    word, context = model.word_vectors(), keras.ops.convert_to_numpy(model.context_embedding.embeddings)
    hidden = (word[1] + word[2]) / 2
    np.testing.assert_allclose(logits[0], [hidden @ context[3], hidden @ context[4]], rtol=1e-5)
    model.save(tmp_path / "w2v.keras")
    loaded = keras.saving.load_model(tmp_path / "w2v.keras")
    assert (loaded.vocabulary_size, loaded.dim) == (30, 8)
    np.testing.assert_array_equal(loaded.word_vectors(), word)


def test_learning_rate_is_word2vecs_per_example_rate_times_the_batch():
    schedule = word2vec_learning_rate(0.025, batch_size=100, total_steps=10, min_alpha=0.001)
    assert float(schedule(0)) == pytest.approx(2.5)
    assert float(schedule(5)) == pytest.approx(100 * (0.025 + 0.001) / 2)
    assert float(schedule(10)) == pytest.approx(0.1)


def test_training_puts_words_of_one_topic_together():
    """Two topics whose words never share a sentence: after training, each word's nearest words are its topic's."""
    rng = np.random.default_rng(0)
    topics = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]]
    texts = [" ".join(rng.choice(topics[k % 2], 12)) for k in range(600)]
    vocabulary = Vocabulary.from_counts(count_words(texts), min_count=1)
    sentences = vocabulary.encode(texts)
    batch_size, epochs = 256, 4
    steps = examples_per_epoch(sentences, vocabulary, window=3, subsample=0) // batch_size
    dataset = word2vec_dataset(
        sentences, vocabulary, window=3, subsample=0, batch_size=batch_size, steps_per_epoch=steps
    )
    keras.utils.set_random_seed(0)
    model = Word2Vec(len(vocabulary), dim=16)
    model.compile(
        optimizer=keras.optimizers.SGD(word2vec_learning_rate(0.05, batch_size, steps * epochs)),
        loss=NegativeSamplingLoss(),
    )
    history = model.fit(dataset, epochs=epochs, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    vectors = model.word_vectors()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    topic = np.array([word[0] for word in vocabulary.words])
    nearest = similarity.argmax(axis=1)
    assert np.all(topic[nearest] == topic)


def test_cbow_gives_every_window_word_its_share_of_the_gradient_and_masked_words_none():
    model = Word2Vec(10, dim=4)
    model.context_embedding.embeddings.assign(np.random.default_rng(1).normal(size=(10, 4)).astype("float32"))
    inputs = {
        "input_words": tf.constant([[1, 2, 3]]),
        "input_mask": tf.constant([[True, True, False]]),
        "candidates": tf.constant([[5, 6]]),
    }
    with tf.GradientTape() as tape:
        loss = NegativeSamplingLoss()(np.array([[1.0, 0.0]], "float32"), model(inputs))
    gradient = tf.convert_to_tensor(tape.gradient(loss, model.word_embedding.embeddings)).numpy()
    # d loss / d h for h · v'_c: the sum over candidates of (σ(logit) − label) v'_c; h is the mean of two words.
    context = model.context_embedding.embeddings.numpy()
    word = model.word_vectors()
    errors = 1 / (1 + np.exp(-(context[[5, 6]] @ ((word[1] + word[2]) / 2)))) - np.array([1.0, 0.0])
    for row in (1, 2):
        np.testing.assert_allclose(gradient[row], errors @ context[[5, 6]] / 2, rtol=1e-5)
    assert np.all(gradient[3] == 0), "a masked-out word is not trained"
