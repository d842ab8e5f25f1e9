"""Word benchmarks: the gensim-shipped files, and our Spearman and 3CosAdd scores against gensim's on the same vectors."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from apps.word2vec.evaluation import (
    WORD_PAIR_FILES,
    analogy_score,
    evaluate_vectors,
    load_analogies,
    load_word_pairs,
    similarity_score,
)


@dataclass
class Vectors:
    words: list[str]
    vectors: np.ndarray


def _keyed(vectors: Vectors) -> KeyedVectors:
    keyed = KeyedVectors(vectors.vectors.shape[1])
    keyed.add_vectors(vectors.words, vectors.vectors)
    return keyed


def _random_vectors(words: list[str], dim: int, seed: int) -> Vectors:
    return Vectors(list(words), np.random.default_rng(seed).normal(size=(len(words), dim)).astype(np.float32))


@pytest.fixture(scope="module")
def questions():
    return load_analogies()


@pytest.fixture(scope="module")
def analogy_vectors(questions):
    """The analogy words minus 5% (out of vocabulary), shuffled, with two sections made partly solvable."""
    rng = np.random.default_rng(0)
    words = sorted({word for question in questions for word in question[1:]})
    words = [words[i] for i in rng.permutation(len(words))[: int(0.95 * len(words))]]
    vectors = _random_vectors(words, 16, seed=1)
    row = {word: i for i, word in enumerate(words)}
    # A shared offset per section makes b - a + c land near the answer, so both outcomes occur.
    for section in ("capital-common-countries", "gram8-plural"):
        offset = rng.normal(size=16).astype(np.float32) * 2
        for _, a, b, *_ in (q for q in questions if q[0] == section):
            if a in row and b in row:
                vectors.vectors[row[b]] = vectors.vectors[row[a]] + offset + rng.normal(size=16) * 0.3
    return vectors


def test_word_pair_files_give_all_pairs_lowercased():
    wordsim, simlex = load_word_pairs("wordsim353"), load_word_pairs("simlex999")
    assert (len(wordsim), len(simlex)) == (353, 999)
    assert wordsim[0] == ("love", "sex", 6.77) and simlex[0] == ("old", "new", 1.58)
    for pairs in (wordsim, simlex):
        assert all(a == a.lower() and b == b.lower() and 0 <= score <= 10 for a, b, score in pairs)
    with pytest.raises(ValueError, match="unknown word-pair benchmark 'men'; benchmarks: wordsim353, simlex999"):
        load_word_pairs("men")


def test_analogy_file_gives_every_question_in_its_section(questions):
    assert len(questions) == 19_544
    sections = list(dict.fromkeys(q[0] for q in questions))
    assert len(sections) == 14 and sections[0] == "capital-common-countries" and sections[-1] == "gram9-plural-verbs"
    assert sum(not q[0].startswith("gram") for q in questions) == 8_869  # semantic, as in Mikolov et al. 2013
    assert questions[0] == ("capital-common-countries", "athens", "greece", "baghdad", "iraq")
    assert all(" ".join(q[1:]) == " ".join(q[1:]).lower() for q in questions)


@pytest.mark.parametrize("name", ["wordsim353", "simlex999"])
def test_spearman_and_coverage_equal_gensim(name):
    pairs = load_word_pairs(name)
    words = sorted({word for a, b, _ in pairs for word in (a, b)})
    vectors = _random_vectors(words[::3] + words[1::3], 24, seed=2)  # a third of the words is missing
    ours = similarity_score(vectors, pairs)
    _, (spearman, _), oov_percent = _keyed(vectors).evaluate_word_pairs(datapath(WORD_PAIR_FILES[name]))
    assert ours["spearman"] == pytest.approx(spearman, abs=1e-6)
    assert ours["total"] == len(pairs)
    assert ours["coverage"] == pytest.approx(1 - oov_percent / 100)
    assert 0.2 < ours["coverage"] < 0.8 and ours["used"] == round(ours["coverage"] * len(pairs))


def test_similarity_skips_pairs_with_a_missing_word():
    vectors = Vectors(["a", "b", "c"], np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float32))
    # cos(a, b) = 0.71 > cos(a, c) = 0: ranked against gold scores 1 < 3 the correlation is -1.
    scores = similarity_score(vectors, [("a", "b", 1.0), ("a", "x", 2.0), ("a", "c", 3.0), ("y", "z", 4.0)])
    assert scores == {"spearman": pytest.approx(-1.0), "used": 2, "total": 4, "coverage": 0.5}
    one = similarity_score(vectors, [("a", "b", 1.0), ("a", "x", 2.0)])
    assert math.isnan(one["spearman"]) and (one["used"], one["coverage"]) == (1, 0.5)


@pytest.mark.parametrize("restrict_vocab", [400, 30000])
def test_analogy_accuracy_equals_gensim(questions, analogy_vectors, restrict_vocab):
    ours = analogy_score(analogy_vectors, questions, restrict_vocab=restrict_vocab)
    accuracy, sections = _keyed(analogy_vectors).evaluate_word_analogies(
        datapath("questions-words.txt"), restrict_vocab=restrict_vocab
    )
    *per_section, total = sections
    assert ours["correct"] == len(total["correct"]) and ours["used"] == len(total["correct"]) + len(total["incorrect"])
    assert ours["accuracy"] == pytest.approx(accuracy)
    assert 0 < ours["correct"] < ours["used"] < ours["total"] == 19_544
    for section in per_section:
        counts = ours["sections"][section["section"]]
        assert (counts["correct"], counts["used"]) == (
            len(section["correct"]),
            len(section["correct"]) + len(section["incorrect"]),
        )
    semantic, syntactic = ours["semantic"], ours["syntactic"]
    assert semantic["correct"] + syntactic["correct"] == ours["correct"]
    assert (semantic["total"], syntactic["total"]) == (8_869, 10_675)
    assert semantic["used"] + syntactic["used"] == ours["used"]


def test_analogy_excludes_the_question_words_and_skips_words_past_restrict_vocab():
    # b - a + c is closest to c itself; excluded, the answer is d, the nearer of the rest.
    vectors = Vectors(
        ["a", "b", "c", "d", "e", "f"],
        np.array([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0.1, 1, 0.2], [0, 0, 1], [0.1, 1, 0.1]], dtype=np.float32),
    )
    questions = [("s", "a", "b", "c", "d"), ("gram1", "a", "b", "c", "f"), ("gram1", "a", "b", "zz", "d")]
    scores = analogy_score(vectors, questions, restrict_vocab=5)
    assert (scores["correct"], scores["used"], scores["total"]) == (1, 1, 3)
    assert scores["coverage"] == pytest.approx(1 / 3)
    assert scores["semantic"] == {"accuracy": 1.0, "correct": 1, "used": 1, "total": 1, "coverage": 1.0}
    assert math.isnan(scores["syntactic"]["accuracy"]) and scores["syntactic"]["total"] == 2
    # With f searched too, it is nearer than d to b - a + c.
    assert analogy_score(vectors, questions[:1], restrict_vocab=6)["correct"] == 0


def test_evaluate_vectors_runs_every_benchmark(analogy_vectors):
    scores = evaluate_vectors(analogy_vectors, restrict_vocab=500)
    assert set(scores) == {"wordsim353", "simlex999", "analogies"}
    assert scores["wordsim353"]["total"] == 353 and scores["simlex999"]["total"] == 999
    assert scores["analogies"]["total"] == 19_544 and scores["analogies"]["used"] > 0


def test_duplicate_words_and_misshaped_vectors_are_errors():
    with pytest.raises(ValueError, match=re.escape("the vocabulary holds 'a' more than once")):
        similarity_score(Vectors(["a", "b", "a"], np.ones((3, 2), dtype=np.float32)), [])
    with pytest.raises(ValueError, match=re.escape("vectors must be [2 words, dim], got shape (3, 2)")):
        analogy_score(Vectors(["a", "b"], np.ones((3, 2), dtype=np.float32)), [])
