"""Evaluation metrics: translation quality with sacreBLEU, and classification scores with numpy.

Translation: corpus-level BLEU and chrF, detokenized and cased, with the sacreBLEU signature reported.
Classification: accuracy, macro and per-class precision/recall/F1, MCC and the confusion matrix, computed
with numpy only so that evaluating a classifier does not need scikit-learn at run time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu


def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
    """sacreBLEU corpus BLEU and chrF of detokenized hypotheses against one reference each.

    sacreBLEU rather than our own BLEU: its default 13a tokenization and signature are what makes a
    number comparable with published ones (keras-hub's `Bleu` metric mimics it but runs eagerly only).

    Args:
        hypotheses: system outputs, one detokenized string per segment.
        references: the reference translation of each segment, same order.

    Returns:
        dict with `bleu`, `chrf` and their sacreBLEU signatures `bleu_signature`, `chrf_signature`.

    Example:
    >>> round(translation_scores(["a dog runs ."], ["a dog runs ."])["bleu"], 1)
    100.0
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references: they must align one to one")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    hypotheses, references = list(hypotheses), [list(references)]
    return {
        "bleu": bleu.corpus_score(hypotheses, references).score,
        "chrf": chrf.corpus_score(hypotheses, references).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def _class_indices(values: Sequence[int], num_classes: int, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of class indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must be integer class indices, got dtype {array.dtype}")
    outside = array[(array < 0) | (array >= num_classes)]
    if outside.size:
        raise ValueError(
            f"{what} holds {outside[0].item()}, outside range({num_classes}) of the {num_classes} label names"
        )
    return array.astype(np.int64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (no division warnings)."""
    numerator, denominator = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)


def _matthews(confusion: np.ndarray) -> float:
    # Gorodkin's R_K: covariance of the one-hot true and predicted labels over the product of their
    # standard deviations; for two classes it is the usual (TP·TN − FP·FN) / sqrt(...).
    total = confusion.sum(dtype=np.float64)
    correct = np.trace(confusion).astype(np.float64)
    true_counts = confusion.sum(axis=1, dtype=np.float64)
    predicted_counts = confusion.sum(axis=0, dtype=np.float64)
    covariance = correct * total - predicted_counts @ true_counts
    spread = (total**2 - predicted_counts @ predicted_counts) * (total**2 - true_counts @ true_counts)
    # One class only, in the labels or in the predictions: the correlation is undefined; 0 as sklearn does.
    return float(covariance / math.sqrt(spread)) if spread > 0 else 0.0


def classification_scores(
    labels: Sequence[int], predictions: Sequence[int], label_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro and per-class precision/recall/F1, Matthews correlation and the confusion matrix.

    Every ratio with a zero denominator is 0 rather than a warning or NaN: a class never predicted has
    precision 0 (so F1 0), a class absent from `labels` has recall 0 and counts in the macro averages,
    which run over all of `label_names` (sklearn's `zero_division=0` with `labels=range(C)`).
    For more than two classes `mcc` is Gorodkin's (2004) multiclass R_K, what sklearn's
    `matthews_corrcoef` computes; it is 0 when the labels or the predictions hold a single class.

    Args:
        labels: the true class index of each example, in `range(len(label_names))`.
        predictions: the predicted class index of each example, same order and length.
        label_names: the class names, indexed by class index.

    Returns:
        dict with `accuracy`, `macro_precision`, `macro_recall`, `macro_f1`, `mcc`, `count` (examples),
        `confusion` (list of lists of counts, rows = true class, columns = predicted class, both in
        `label_names` order) and `per_class`: {name: {`precision`, `recall`, `f1`, `support` (true examples
        of the class), `false_positive_rate` (share of the other classes' examples predicted as this one;
        for "spam" in a ham/spam task, the ham false-positive rate)}}.

    Raises:
        ValueError: no examples, lengths differ, or a label or prediction is not an index of `label_names`.

    Example:
    >>> scores = classification_scores([0, 0, 1, 1], [0, 1, 1, 1], ["ham", "spam"])
    >>> scores["accuracy"], scores["per_class"]["spam"]["precision"], scores["confusion"]
    (0.75, 0.6666666666666666, [[1, 1], [0, 2]])
    """
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions: they must align one to one")
    if not len(labels):
        raise ValueError("no examples to score: labels and predictions are empty")
    num_classes = len(label_names)
    true = _class_indices(labels, num_classes, "labels")
    predicted = _class_indices(predictions, num_classes, "predictions")
    confusion = np.bincount(true * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, -1)

    true_positives = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted_counts = confusion.sum(axis=0)
    count = int(confusion.sum())
    precision = _ratio(true_positives, predicted_counts)
    recall = _ratio(true_positives, support)
    # 2TP / (2TP + FP + FN) equals 2PR / (P + R) wherever both are defined, and is 0 instead of 0/0.
    f1 = _ratio(2 * true_positives, support + predicted_counts)
    false_positive_rate = _ratio(predicted_counts - true_positives, count - support)
    return {
        "accuracy": float(true_positives.sum() / count),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "mcc": _matthews(confusion),
        "per_class": {
            name: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
                "false_positive_rate": float(false_positive_rate[k]),
            }
            for k, name in enumerate(label_names)
        },
        "confusion": confusion.tolist(),
        "count": count,
    }


def mean_sd(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation of a metric over runs (e.g. seeds), unrounded.

    Args:
        values: one value per run.

    Returns:
        {"mean", "sd" (ddof=1; 0.0 for a single value), "n" (number of values)}.

    Raises:
        ValueError: `values` is empty.

    Example:
    >>> mean_sd([0.8, 0.9, 1.0])["sd"]
    0.09999999999999998
    """
    array = np.asarray(values, dtype=np.float64)
    if not array.size:
        raise ValueError("mean_sd needs at least one value")
    sd = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(array.mean()), "sd": sd, "n": int(array.size)}


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]], label_names: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Save a confusion matrix as a PNG heat map: counts in the cells, colour = share of the true class.

    Colour is row-normalised so that a small class's errors stand out as much as a large one's; the
    cell text keeps the raw counts.

    Args:
        confusion: square matrix of counts, rows = true class, columns = predicted class, as in
            `classification_scores(...)["confusion"]`.
        label_names: the class names, in row order.
        path: where to write the PNG; parent folders are created.
        title: optional figure title.

    Returns:
        The written path.

    Example:
    >>> plot_confusion_matrix([[50, 2], [5, 43]], ["ham", "spam"], "confusion.png", "SMS spam")  # doctest: +SKIP
    PosixPath('confusion.png')
    """
    # A bare Figure on an Agg canvas: no pyplot state, no backend switch, no rcParams change for the
    # caller's process, and nothing left registered once the function returns.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=np.int64)
    num_classes = len(label_names)
    if counts.shape != (num_classes, num_classes):
        raise ValueError(f"confusion has shape {counts.shape}, expected ({num_classes}, {num_classes}) for the labels")
    shares = _ratio(counts, np.broadcast_to(counts.sum(axis=1, keepdims=True), counts.shape))

    size = 1.6 + 0.9 * num_classes
    figure = Figure(figsize=(size + 1.2, size))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axis, label="share of the true class")
    for row in range(num_classes):
        for column in range(num_classes):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axis.text(column, row, f"{counts[row, column]:,}", ha="center", va="center", color=colour)
    axis.set_xticks(range(num_classes), label_names, rotation=30, ha="right")
    axis.set_yticks(range(num_classes), label_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if title:
        axis.set_title(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=120)
    figure.clear()
    return path
