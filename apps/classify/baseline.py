"""The anchor every neural classifier is compared with: TF-IDF word 1–2-grams + logistic regression.

scikit-learn is a dev/bench dependency only, so it is imported when the baseline runs, never at module import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

C_GRID = (0.25, 1.0, 4.0, 16.0)
DEFAULT_C = 1.0


def tfidf_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    test_texts: Sequence[str],
    *,
    seed: int = 0,
    C: float | None = None,
    val_texts: Sequence[str] | None = None,
    val_labels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Fit TF-IDF (word 1–2-grams) + logistic regression on the train split and predict the test texts.

    The vectorizer is lowercased, sublinear-tf and keeps n-grams seen in at least two training texts: a
    one-off n-gram carries no evidence that generalises, and on AG News the one-off bigrams are most of
    the vocabulary. With `C` None and a val split, C is the grid value (`C_GRID`) with the best val
    accuracy, the smaller C on ties; without a val split it is `DEFAULT_C`. The val split only chooses C,
    the returned model is trained on the train split alone. The result is deterministic for a seed.

    Args:
        train_texts: training texts.
        train_labels: their class indices.
        test_texts: texts to predict.
        seed: random state of the logistic regression.
        C: inverse L2 regularisation strength; None to pick it as above.
        val_texts: optional validation texts, used only to pick C.
        val_labels: their class indices; given exactly when `val_texts` is.

    Returns:
        dict with `predictions` (class index per test text), `probabilities` (per test text, one probability
        per class in sorted training-label order, i.e. by class index when every class occurs in training),
        `C` (the value used), `train_seconds` (wall-clock of fitting the vectorizer and every model the
        choice of C needed), `features` (vocabulary size) and `classify`, a function from a list of texts to
        their probabilities (the fitted vectorizer and model, e.g. for timing one prediction).

    Raises:
        ImportError: scikit-learn is not installed.
        ValueError: mismatched lengths, or only one of `val_texts` / `val_labels` given.

    Example:
    >>> result = tfidf_baseline(["good fun", "good film", "bad film", "bad fun"], [1, 1, 0, 0], ["good"])
    >>> result["predictions"], result["C"]
    ([1], 1.0)
    """
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError as error:
        raise ImportError("the TF-IDF baseline needs scikit-learn: pip install scikit-learn") from error

    if len(train_texts) != len(train_labels):
        raise ValueError(f"{len(train_texts)} train texts but {len(train_labels)} train labels")
    if (val_texts is None) != (val_labels is None):
        raise ValueError("give val_texts and val_labels together, or neither")
    if val_texts is not None and len(val_texts) != len(val_labels):
        raise ValueError(f"{len(val_texts)} val texts but {len(val_labels)} val labels")

    def fit(features, c: float) -> LogisticRegression:
        # lbfgs's default 100 iterations can stop short of convergence at large C; 2000 leaves ample margin.
        return LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(features, list(train_labels))

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, lowercase=True)
    train_features = vectorizer.fit_transform(train_texts)
    if C is not None:
        chosen, model = C, fit(train_features, C)
    elif val_texts is not None:
        val_features, val_targets = vectorizer.transform(val_texts), list(val_labels)
        candidates = [(c, fit(train_features, c)) for c in C_GRID]
        # max keeps the first of equal scores, so ties go to the smaller (more regularised) C.
        chosen, model = max(candidates, key=lambda pair: pair[1].score(val_features, val_targets))
    else:
        chosen, model = DEFAULT_C, fit(train_features, DEFAULT_C)
    train_seconds = time.perf_counter() - start

    probabilities = model.predict_proba(vectorizer.transform(test_texts))
    return {
        "predictions": [int(label) for label in model.classes_[probabilities.argmax(axis=1)]],
        "probabilities": probabilities.tolist(),
        "C": float(chosen),
        "train_seconds": train_seconds,
        "features": len(vectorizer.vocabulary_),
        "classify": lambda texts: model.predict_proba(vectorizer.transform(texts)),
    }


def corpus_baseline(corpus: str, data_dir: str | None = None, *, seed: int = 0) -> dict[str, Any]:
    """`tfidf_baseline` on a classify corpus's own splits (fit on train, C chosen on val, scored on test).

    Returns:
        `tfidf_baseline`'s dict plus `scores`, `kerasllm.metrics.classification_scores` on the test split.
    """
    from apps.classify.datasets import load_split
    from kerasllm.metrics import classification_scores

    train, val, test = (load_split(corpus, split, data_dir) for split in ("train", "val", "test"))
    result = tfidf_baseline(
        train.texts, train.labels, test.texts, seed=seed, val_texts=val.texts, val_labels=val.labels
    )
    return {**result, "scores": classification_scores(test.labels, result["predictions"], test.label_names)}
