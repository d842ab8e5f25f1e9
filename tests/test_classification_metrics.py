"""Classification metrics against scikit-learn, the confusion-matrix plot, and the TF-IDF baseline."""

from __future__ import annotations

import math
import statistics
import sys
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import DATA_DIR
from sklearn.metrics import accuracy_score, confusion_matrix, matthews_corrcoef, precision_recall_fscore_support

from apps.classify.baseline import C_GRID, DEFAULT_C, corpus_baseline, tfidf_baseline
from kerasllm.metrics import classification_scores, mean_sd, plot_confusion_matrix


def assert_matches_sklearn(labels: list[int], predictions: list[int], label_names: list[str]) -> dict:
    # Division warnings are errors here: a zero denominator must give 0 silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        scores = classification_scores(labels, predictions, label_names)
    classes = list(range(len(label_names)))
    assert scores["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
    macro = precision_recall_fscore_support(labels, predictions, labels=classes, average="macro", zero_division=0)
    assert [scores["macro_precision"], scores["macro_recall"], scores["macro_f1"]] == pytest.approx(macro[:3])
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, average=None, zero_division=0
    )
    per_class = [scores["per_class"][name] for name in label_names]
    assert [c["precision"] for c in per_class] == pytest.approx(precision)
    assert [c["recall"] for c in per_class] == pytest.approx(recall)
    assert [c["f1"] for c in per_class] == pytest.approx(f1)
    assert [c["support"] for c in per_class] == support.tolist()
    assert scores["mcc"] == pytest.approx(matthews_corrcoef(labels, predictions))
    confusion = confusion_matrix(labels, predictions, labels=classes)
    assert scores["confusion"] == confusion.tolist()
    false_positives = confusion.sum(axis=0) - np.diag(confusion)
    negatives = confusion.sum() - confusion.sum(axis=1)
    assert [c["false_positive_rate"] for c in per_class] == pytest.approx(false_positives / negatives)
    assert scores["count"] == len(labels)
    return scores


@pytest.mark.parametrize("num_classes, seed", [(2, 0), (2, 1), (4, 0), (4, 1)])
def test_random_predictions_match_sklearn(num_classes, seed):
    generator = np.random.default_rng(seed)
    labels = generator.integers(0, num_classes, size=500)
    # Mostly right with random errors, so that no score sits at 0 or 1.
    predictions = np.where(generator.random(500) < 0.7, labels, generator.integers(0, num_classes, size=500))
    assert_matches_sklearn(labels.tolist(), predictions.tolist(), [f"class_{k}" for k in range(num_classes)])


@pytest.mark.parametrize("num_classes", [2, 4])
def test_a_class_never_predicted_has_precision_zero(num_classes):
    generator = np.random.default_rng(7)
    labels = generator.integers(0, num_classes, size=300)
    predictions = generator.integers(0, num_classes - 1, size=300)  # the last class is never predicted
    names = [f"class_{k}" for k in range(num_classes)]
    scores = assert_matches_sklearn(labels.tolist(), predictions.tolist(), names)
    never = scores["per_class"][names[-1]]
    assert never["precision"] == never["recall"] == never["f1"] == never["false_positive_rate"] == 0.0
    assert never["support"] == int((labels == num_classes - 1).sum()) > 0


def test_single_class_predictions_give_mcc_zero():
    assert_matches_sklearn([0, 1, 1, 0, 1], [1, 1, 1, 1, 1], ["ham", "spam"])
    assert classification_scores([0, 1, 1, 0, 1], [1, 1, 1, 1, 1], ["ham", "spam"])["mcc"] == 0.0


def test_hand_computed_three_classes():
    # confusion rows (true) a: [2, 1, 0], b: [0, 1, 1], c: [0, 0, 1]
    scores = classification_scores([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert scores["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert scores["count"] == 6
    assert scores["accuracy"] == pytest.approx(4 / 6)
    per_class = scores["per_class"]
    assert [per_class[n]["precision"] for n in "abc"] == pytest.approx([1.0, 0.5, 0.5])
    assert [per_class[n]["recall"] for n in "abc"] == pytest.approx([2 / 3, 0.5, 1.0])
    assert [per_class[n]["f1"] for n in "abc"] == pytest.approx([0.8, 0.5, 2 / 3])
    assert [per_class[n]["support"] for n in "abc"] == [3, 2, 1]
    # false positives / examples of the other classes: 0/3, 1/4, 1/5
    assert [per_class[n]["false_positive_rate"] for n in "abc"] == pytest.approx([0.0, 0.25, 0.2])
    assert scores["macro_precision"] == pytest.approx(2 / 3)
    assert scores["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert scores["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # R_K = (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)) with c=4, s=6, t=(3,2,1), p=(2,2,2)
    assert scores["mcc"] == pytest.approx((4 * 6 - 12) / math.sqrt((36 - 12) * (36 - 14)))


def test_hand_computed_binary_mcc_and_ham_false_positive_rate():
    # spam as positive: TP=2, TN=1, FP=1 (a ham flagged as spam), FN=0
    scores = classification_scores([0, 0, 1, 1], [0, 1, 1, 1], ["ham", "spam"])
    assert scores["mcc"] == pytest.approx((2 * 1 - 1 * 0) / math.sqrt(3 * 2 * 2 * 1))
    assert scores["per_class"]["spam"]["false_positive_rate"] == 0.5
    assert scores["per_class"]["ham"]["false_positive_rate"] == 0.0


@pytest.mark.parametrize(
    "labels, predictions, message",
    [
        ([0, 1], [0], "2 labels but 1 predictions"),
        ([0, 5], [0, 1], "labels holds 5, outside range"),
        ([0, 1], [-1, 1], "predictions holds -1, outside range"),
        ([0.0, 1.0], [0, 1], "integer class indices"),
        ([], [], "no examples"),
    ],
)
def test_classification_scores_errors(labels, predictions, message):
    with pytest.raises(ValueError, match=message):
        classification_scores(labels, predictions, ["negative", "positive"])


def test_mean_sd():
    values = [0.81, 0.79, 0.84, 0.80]
    result = mean_sd(values)
    assert result["mean"] == pytest.approx(statistics.mean(values))
    assert result["sd"] == pytest.approx(statistics.stdev(values))  # sample sd, ddof=1
    assert result["n"] == 4
    assert mean_sd([0.5]) == {"mean": 0.5, "sd": 0.0, "n": 1}
    with pytest.raises(ValueError, match="at least one value"):
        mean_sd([])


def test_plot_confusion_matrix_writes_png_without_global_state(tmp_path):
    rc_before, backend_before, figures_before = dict(matplotlib.rcParams), matplotlib.get_backend(), plt.get_fignums()
    path = plot_confusion_matrix(
        [[1900, 0, 0, 0], [3, 1800, 90, 7], [0, 0, 1900, 0], [5, 5, 5, 1885]],
        ["World", "Sports", "Business", "Sci/Tech"],
        tmp_path / "figures" / "confusion.png",
        title="AG News",
    )
    assert path == tmp_path / "figures" / "confusion.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = plt.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100 and image.std() > 0
    assert dict(matplotlib.rcParams) == rc_before and matplotlib.get_backend() == backend_before
    assert plt.get_fignums() == figures_before
    with pytest.raises(ValueError, match="expected \\(3, 3\\)"):
        plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "bad.png")


def synthetic_texts(seed: int, count: int, class_shares: list[float] | None = None) -> tuple[list[str], list[int]]:
    """Three classes, each with its own cue words, mixed with words shared by every class."""
    generator = np.random.default_rng(seed)
    cues = [["goal", "match", "league"], ["stock", "market", "shares"], ["planet", "orbit", "telescope"]]
    shared = ["the", "a", "today", "report", "new", "said", "on", "week"]
    texts, labels = [], []
    for _ in range(count):
        label = int(generator.choice(len(cues), p=class_shares))
        words = list(generator.choice(shared, size=5)) + list(generator.choice(cues[label], size=2))
        texts.append(" ".join(generator.permutation(words)))
        labels.append(label)
    return texts, labels


def test_tfidf_baseline_separates_synthetic_classes_and_picks_c_on_val():
    # Imbalanced training classes: the most regularised C leans on the class prior and misses the rare
    # class on the balanced val and test splits, so choosing C on val matters.
    train_texts, train_labels = synthetic_texts(0, 200, class_shares=[0.6, 0.3, 0.1])
    val_texts, val_labels = synthetic_texts(1, 60)
    test_texts, test_labels = synthetic_texts(2, 90)
    names = ["sport", "business", "science"]
    result = tfidf_baseline(train_texts, train_labels, test_texts, seed=3, val_texts=val_texts, val_labels=val_labels)
    assert classification_scores(test_labels, result["predictions"], names)["accuracy"] == 1.0

    val_accuracy = [
        classification_scores(
            val_labels, tfidf_baseline(train_texts, train_labels, val_texts, C=c, seed=3)["predictions"], names
        )["accuracy"]
        for c in C_GRID
    ]
    assert result["C"] == C_GRID[int(np.argmax(val_accuracy))] != C_GRID[0]  # the first C with the best val score
    probabilities = np.asarray(result["probabilities"])
    assert probabilities.shape == (90, 3) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities.argmax(axis=1).tolist() == result["predictions"]
    assert result["features"] > 0 and result["train_seconds"] > 0

    again = tfidf_baseline(train_texts, train_labels, test_texts, seed=3, val_texts=val_texts, val_labels=val_labels)
    assert (again["predictions"], again["probabilities"], again["C"]) == (
        result["predictions"],
        result["probabilities"],
        result["C"],
    )
    assert tfidf_baseline(train_texts, train_labels, test_texts, C=16.0)["C"] == 16.0
    assert tfidf_baseline(train_texts, train_labels, test_texts)["C"] == DEFAULT_C


def test_tfidf_baseline_errors(monkeypatch):
    texts, labels = synthetic_texts(0, 10)
    with pytest.raises(ValueError, match="10 train texts but 9 train labels"):
        tfidf_baseline(texts, labels[:9], texts)
    with pytest.raises(ValueError, match="together"):
        tfidf_baseline(texts, labels, texts, val_texts=texts)
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # as if scikit-learn were not installed
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        tfidf_baseline(texts, labels, texts)


@pytest.mark.full_data
@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA_DIR / "sst2" / "dev.tsv.gz").exists(),
    reason=f"SST-2 not found at {DATA_DIR / 'sst2' / 'dev.tsv.gz'}: set KERASLLM_DATA to the shared data folder",
)
def test_tfidf_baseline_on_sst2_dev():
    # The classify app's SST-2 splits: C is chosen on a seeded 5% of train, never on dev (the reported split).
    result = corpus_baseline("sst2", str(DATA_DIR))
    scores = result["scores"]
    print(f"SST-2 dev accuracy {scores['accuracy']:.4f}, C={result['C']}, {result['features']} features")
    assert scores["accuracy"] >= 0.78
