"""Overlapping windows over token ids, for classifying texts longer than a model's window.

A classifier sees at most `window` tokens. A longer text is cut into overlapping windows of its token ids, every
window is classified, and the window scores are aggregated back into one score per text
(`aggregate_windows`, mean or per-class max). The overlap gives each token some context on both sides in at
least one window instead of cutting it off at a hard boundary.

Start rule: a text of length L has no window when L == 0 and one window (start 0, the whole text) when
0 < L <= window. Otherwise it has `1 + ceil((L - window) / stride)` windows starting at 0, stride, 2 * stride, ...,
and the last start is clipped to `L - window`, so the last window ends exactly at the end of the text. Hence every
token is covered, no window runs past the end, every window of a long text has exactly `window` tokens, and
starts are strictly increasing (only the last start can be clipped, and it stays above the one before it).

Worked examples with window=4, stride=3:
    L=10: 1 + ceil(6 / 3) = 3 windows, starts 0, 3, 6 (the last is already L - window = 6): [0, 4) [3, 7) [6, 10).
    L=11: 1 + ceil(7 / 3) = 4 windows, starts 0, 3, 6, 9 -> the last is clipped to 7: [0, 4) [3, 7) [6, 10) [7, 11).

Everything here is made of core TensorFlow ops (ragged ranges, gathers, unsorted segment reductions), so the same
functions run eagerly, in tf.data and inside an exported serving graph with an unknown batch size.
"""

from __future__ import annotations

import tensorflow as tf

WINDOW_AGGREGATIONS = ("mean", "max")


def check_window_arguments(window: int, stride: int) -> None:
    """ValueError unless window >= 1 and 1 <= stride <= window (so a serving module fails when built, not traced)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not 1 <= stride <= window:
        raise ValueError(f"stride must be between 1 and window={window}, got {stride}")


def window_starts(lengths: tf.Tensor, window: int, stride: int) -> tf.RaggedTensor:
    """Start offsets of the windows of each text, by the start rule in the module docstring.

    Args:
        lengths: int [B], the number of tokens of each text.
        window: the most tokens in one window (>= 1).
        stride: distance between consecutive starts before the last is clipped (1 <= stride <= window).

    Returns:
        int32 [B, (windows)] start offsets, strictly increasing within each row.

    Example:
        >>> window_starts(tf.constant([0, 3, 10, 11]), window=4, stride=3).to_list()
        [[], [0], [0, 3, 6], [0, 3, 6, 7]]
    """
    check_window_arguments(window, stride)
    lengths = tf.cast(lengths, tf.int32)
    overhang = tf.maximum(lengths - window, 0)
    # Ceiling division: one more window for any tokens past the last full stride.
    counts = tf.where(lengths > 0, 1 + (overhang + stride - 1) // stride, 0)
    starts = tf.ragged.range(counts) * stride
    last_start = tf.gather(overhang, starts.value_rowids())
    return starts.with_flat_values(tf.minimum(starts.flat_values, last_start))


def sliding_windows(token_ids: tf.RaggedTensor, window: int, stride: int) -> tuple[tf.RaggedTensor, tf.Tensor]:
    """Cuts each text of token ids into overlapping windows (see `window_starts` for where they start).

    Args:
        token_ids: int [B, (tokens)] ragged ids, one row per text.
        window: the most tokens in one window (>= 1).
        stride: distance between consecutive window starts (1 <= stride <= window).

    Returns:
        `(windows, row_ids)`: windows is [W, (<= window)] ragged ids of the same dtype as `token_ids`, each a
        contiguous slice of its text, texts in order and windows in order within a text; row_ids is int32 [W],
        the (non-decreasing) index of the text each window came from. W is the total number of windows; a text
        with no tokens contributes none. A text of at most `window` tokens gives one window equal to the text.

    Example:
        >>> ids = tf.ragged.constant([[5, 6, 7, 8, 9, 10], [], [11, 12]])
        >>> windows, row_ids = sliding_windows(ids, window=4, stride=2)
        >>> windows.to_list(), row_ids.numpy().tolist()
        ([[5, 6, 7, 8], [7, 8, 9, 10], [11, 12]], [0, 0, 2])
    """
    if not isinstance(token_ids, tf.RaggedTensor) or token_ids.ragged_rank != 1:
        raise TypeError(f"token_ids must be a [batch, (tokens)] RaggedTensor, got {token_ids!r}")
    starts = window_starts(token_ids.row_lengths(), window, stride)
    row_ids = tf.cast(starts.value_rowids(), tf.int32)
    index_dtype = token_ids.row_splits.dtype
    lengths = tf.gather(token_ids.row_lengths(), row_ids)
    offsets = tf.cast(starts.flat_values, index_dtype)
    window_lengths = tf.minimum(tf.cast(window, index_dtype), lengths - offsets)
    # Positions in the flat values of token_ids: the row's first token + the window's start + 0..length-1.
    first = tf.gather(token_ids.row_starts(), row_ids) + offsets
    positions = tf.ragged.range(first, first + window_lengths)
    windows = tf.RaggedTensor.from_row_splits(
        tf.gather(token_ids.values, positions.flat_values), positions.row_splits, validate=False
    )
    return windows, row_ids


def aggregate_windows(
    window_logits: tf.Tensor, row_ids: tf.Tensor, num_rows: tf.Tensor | int, method: str = "mean"
) -> tuple[tf.Tensor, tf.Tensor]:
    """Aggregates window scores into one score per text.

    Args:
        window_logits: float [W, C] scores of each window.
        row_ids: int [W], the text of each window (as returned by `sliding_windows`).
        num_rows: the number of texts B (a Python int or a scalar int tensor, e.g. `token_ids.nrows()`).
        method: "mean" (mean over a text's windows) or "max" (per-class max over its windows).

    Returns:
        `(scores, counts)`: scores float [B, C], counts int32 [B] windows per text. A text with no windows gets
        zero scores and count 0; the caller decides what such a text's answer is.

    Example:
        >>> logits = tf.constant([[1.0, 4.0], [3.0, 0.0], [5.0, 5.0]])
        >>> scores, counts = aggregate_windows(logits, tf.constant([0, 0, 2]), 3, method="max")
        >>> scores.numpy().tolist(), counts.numpy().tolist()
        ([[3.0, 4.0], [0.0, 0.0], [5.0, 5.0]], [2, 0, 1])
    """
    if method not in WINDOW_AGGREGATIONS:
        raise ValueError(f"method must be one of {WINDOW_AGGREGATIONS}, got {method!r}")
    window_logits = tf.convert_to_tensor(window_logits)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(row_ids, tf.int32), row_ids, num_rows)
    if method == "mean":
        # unsorted_segment_mean divides by max(count, 1), so an empty row is already zero.
        return tf.math.unsorted_segment_mean(window_logits, row_ids, num_rows), counts
    # unsorted_segment_max fills an empty row with the dtype's lowest value.
    maxima = tf.math.unsorted_segment_max(window_logits, row_ids, num_rows)
    return tf.where(counts[:, tf.newaxis] > 0, maxima, tf.zeros_like(maxima)), counts
