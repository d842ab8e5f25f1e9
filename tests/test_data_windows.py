"""Sliding windows over token ids: start rule, coverage, aggregation, graph mode."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kerasllm.data.windows import WINDOW_AGGREGATIONS, aggregate_windows, sliding_windows, window_starts


def reference_starts(length: int, window: int, stride: int) -> list[int]:
    """Greedy walk: step by stride, clip the start that would run past the end, stop once the end is reached."""
    starts, start = [], 0
    while start < length:
        clipped = min(start, max(length - window, 0))
        starts.append(clipped)
        if clipped + window >= length:
            break
        start += stride
    return starts


def reference_windows(texts: list[list[int]], window: int, stride: int) -> tuple[list[list[int]], list[int]]:
    windows, row_ids = [], []
    for row, text in enumerate(texts):
        for start in reference_starts(len(text), window, stride):
            windows.append(text[start : start + window])
            row_ids.append(row)
    return windows, row_ids


@pytest.mark.parametrize(
    "length, window, stride, expected",
    [
        (0, 4, 3, []),
        (1, 4, 3, [0]),
        (4, 4, 3, [0]),
        (5, 4, 3, [0, 1]),
        (10, 4, 3, [0, 3, 6]),
        (11, 4, 3, [0, 3, 6, 7]),
        (12, 4, 4, [0, 4, 8]),
        (13, 4, 4, [0, 4, 8, 9]),
        (7, 4, 1, [0, 1, 2, 3]),
        (1, 1, 1, [0]),
        (3, 1, 1, [0, 1, 2]),
        (100, 32, 16, [0, 16, 32, 48, 64, 68]),
    ],
)
def test_window_starts_hand_computed(length, window, stride, expected):
    assert window_starts(tf.constant([length]), window, stride).to_list() == [expected]
    assert reference_starts(length, window, stride) == expected


def test_window_starts_batch_and_dtypes():
    starts = window_starts(tf.constant([11, 0, 3], tf.int64), window=4, stride=3)
    assert starts.dtype == tf.int32
    assert starts.to_list() == [[0, 3, 6, 7], [], [0]]
    assert window_starts(tf.zeros([0], tf.int32), 4, 3).to_list() == []


@pytest.mark.parametrize("window, stride", [(1, 1), (3, 1), (4, 3), (5, 5), (8, 3), (16, 8)])
def test_windows_cover_every_token_with_contiguous_slices(window, stride):
    rng = np.random.default_rng(window * 100 + stride)
    lengths = rng.integers(0, 5 * window + 3, size=40)
    lengths[[3, 17]] = 0  # empty texts in the middle of the batch
    texts = [rng.integers(1, 1000, size=length).tolist() for length in lengths]
    windows, row_ids = sliding_windows(tf.ragged.constant(texts, tf.int32, ragged_rank=1), window, stride)
    expected_windows, expected_row_ids = reference_windows(texts, window, stride)
    assert windows.to_list() == expected_windows
    assert row_ids.dtype == tf.int32
    assert row_ids.numpy().tolist() == expected_row_ids

    starts = window_starts(tf.constant(lengths), window, stride).to_list()
    got = windows.to_list()
    w = 0
    for text, text_starts in zip(texts, starts):
        covered = set()
        for start in text_starts:
            assert got[w] == text[start : start + window]
            assert len(got[w]) == min(window, len(text))
            covered.update(range(start, start + len(got[w])))
            w += 1
        assert covered == set(range(len(text)))
        assert text_starts == sorted(set(text_starts))
    assert w == len(got)


def test_a_text_that_fits_gives_one_window_equal_to_the_text():
    texts = [[7, 8, 9], [4], [1, 2, 3, 4, 5]]
    windows, row_ids = sliding_windows(tf.ragged.constant(texts), window=5, stride=2)
    assert windows.to_list() == texts
    assert row_ids.numpy().tolist() == [0, 1, 2]


def test_empty_texts_contribute_no_windows():
    windows, row_ids = sliding_windows(tf.ragged.constant([[], []], tf.int32), window=4, stride=2)
    assert windows.to_list() == [] and row_ids.numpy().tolist() == []


def numpy_aggregate(logits: np.ndarray, row_ids: np.ndarray, num_rows: int, method: str) -> np.ndarray:
    reduce = {"mean": np.mean, "max": np.max}[method]
    return np.stack(
        [
            reduce(logits[row_ids == row], axis=0) if (row_ids == row).any() else np.zeros(logits.shape[1])
            for row in range(num_rows)
        ]
    )


@pytest.mark.parametrize("method", WINDOW_AGGREGATIONS)
def test_aggregate_matches_numpy_and_keeps_rows_aligned(method):
    rng = np.random.default_rng(0)
    row_ids = np.array([0, 0, 0, 2, 4, 4, 5], np.int32)  # rows 1 and 3 have no windows; 5 is the last row
    logits = rng.normal(size=(len(row_ids), 3)).astype(np.float32)
    scores, counts = aggregate_windows(tf.constant(logits), tf.constant(row_ids), 6, method=method)
    np.testing.assert_allclose(scores.numpy(), numpy_aggregate(logits, row_ids, 6, method), rtol=1e-6, atol=1e-6)
    assert counts.dtype == tf.int32
    assert counts.numpy().tolist() == [3, 0, 1, 0, 2, 1]
    assert not scores.numpy()[[1, 3]].any()


@pytest.mark.parametrize("method", WINDOW_AGGREGATIONS)
def test_aggregate_with_no_windows_at_all(method):
    scores, counts = aggregate_windows(tf.zeros([0, 2]), tf.zeros([0], tf.int32), 3, method=method)
    assert scores.numpy().tolist() == [[0.0, 0.0]] * 3
    assert counts.numpy().tolist() == [0, 0, 0]


@pytest.mark.parametrize("dtype", [tf.int32, tf.int64])
def test_windows_and_aggregation_in_a_tf_function(dtype):
    window, stride = 4, 3

    @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], dtype)])
    def score_texts(token_ids):
        windows, row_ids = sliding_windows(token_ids, window, stride)
        # A stand-in classifier: per-window (sum of ids, first id), so aggregates can be checked by hand.
        dense = tf.cast(windows.to_tensor(), tf.float32)
        logits = tf.stack([tf.reduce_sum(dense, axis=1), dense[:, 0]], axis=1)
        mean, counts = aggregate_windows(logits, row_ids, token_ids.nrows(), method="mean")
        maxima, _ = aggregate_windows(logits, row_ids, token_ids.nrows(), method="max")
        return windows, row_ids, mean, maxima, counts

    texts = [list(range(1, 12)), [], [5, 6]]
    windows, row_ids, mean, maxima, counts = score_texts(tf.ragged.constant(texts, dtype))
    assert windows.dtype == dtype
    assert windows.to_list() == [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10], [8, 9, 10, 11], [5, 6]]
    assert row_ids.numpy().tolist() == [0, 0, 0, 0, 2]
    assert counts.numpy().tolist() == [4, 0, 1]
    np.testing.assert_allclose(mean.numpy(), [[(10 + 22 + 34 + 38) / 4, (1 + 4 + 7 + 8) / 4], [0, 0], [11, 5]])
    np.testing.assert_allclose(maxima.numpy(), [[38, 8], [0, 0], [11, 5]])
    # The one traced graph serves another batch size and text lengths.
    _, row_ids, _, _, counts = score_texts(tf.ragged.constant([[1], [2, 3, 4, 5, 6]], dtype))
    assert row_ids.numpy().tolist() == [0, 1, 1] and counts.numpy().tolist() == [1, 2]
    assert score_texts.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "window, stride, name", [(0, 1, "window"), (4, 0, "stride"), (4, 5, "stride"), (-2, 1, "window")]
)
def test_bad_window_arguments_raise(window, stride, name):
    with pytest.raises(ValueError, match=name):
        window_starts(tf.constant([5]), window, stride)
    with pytest.raises(ValueError, match=name):
        sliding_windows(tf.ragged.constant([[1, 2, 3]]), window, stride)


def test_bad_aggregation_method_raises():
    with pytest.raises(ValueError, match="method"):
        aggregate_windows(tf.zeros([1, 2]), tf.zeros([1], tf.int32), 1, method="median")


def test_dense_token_ids_are_rejected():
    with pytest.raises(TypeError, match="RaggedTensor"):
        sliding_windows(tf.constant([[1, 2, 3]]), 2, 1)
