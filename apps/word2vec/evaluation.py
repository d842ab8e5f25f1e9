"""Word-vector benchmarks from the gensim wheel: WordSim-353 and SimLex-999 similarity, the Google analogies.

The files are read from `gensim.test.utils.datapath`, so nothing is downloaded. Benchmark words are lowercased and
matched exactly against the vocabulary, which is expected to be lowercase (as `kerasllm.data.english.words` gives
it); for such a vocabulary the scores equal gensim's `KeyedVectors.evaluate_word_pairs` and
`evaluate_word_analogies` (case_insensitive=True, dummy4unknown=False): a pair or question with a word outside the
vocabulary is skipped and counted in `coverage`.

`vectors` arguments are anything with `words: list[str]` (the vocabulary, most frequent first, no duplicates) and
`vectors: np.ndarray` (float32 [n, dim], row i for `words[i]`), such as `kerasllm.data.word_vectors.WordVectors`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np
from gensim.test.utils import datapath
from scipy import stats

WORD_PAIR_FILES = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
ANALOGY_FILE = "questions-words.txt"
SYNTACTIC_PREFIX = "gram"
"""Analogy sections whose name starts with this are syntactic (gram1-adjective-to-adverb, ...), the rest semantic."""

_BATCH = 256  # questions scored per matrix product: 256 x 30k float32 scores is 30 MB


class Vectors(Protocol):
    """Word vectors: `vectors[i]` is the vector of `words[i]`."""

    words: list[str]
    vectors: np.ndarray


def load_word_pairs(name: str) -> list[tuple[str, str, float]]:
    """Read a word-similarity benchmark: (word, word, human score), words lowercased.

    Args:
        name: "wordsim353" (353 pairs, relatedness 0-10) or "simlex999" (999 pairs, similarity 0-10).

    Returns:
        The pairs in file order; '#' comment lines are skipped.

    Raises:
        ValueError: unknown name, or a line that is not `word<TAB>word<TAB>score` (names the file and line).

    Example:
        >>> load_word_pairs("wordsim353")[0]
        ('love', 'sex', 6.77)
    """
    if name not in WORD_PAIR_FILES:
        raise ValueError(f"unknown word-pair benchmark {name!r}; benchmarks: {', '.join(WORD_PAIR_FILES)}")
    path = Path(datapath(WORD_PAIR_FILES[name]))
    pairs = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        try:
            first, second, score = fields
            pairs.append((first.strip().lower(), second.strip().lower(), float(score)))
        except ValueError:
            raise ValueError(f"{path}:{line_no}: expected 'word<TAB>word<TAB>score', got {line!r}") from None
    return pairs


def load_analogies() -> list[tuple[str, str, str, str, str]]:
    """Read the Google analogy questions: (section, a, b, c, expected), meaning a : b :: c : expected.

    Returns:
        The 19,544 questions in file order, words lowercased; 14 sections, those starting with "gram" syntactic.

    Raises:
        ValueError: a question before the first ": section" line, or a line without exactly four words.

    Example:
        >>> load_analogies()[0]
        ('capital-common-countries', 'athens', 'greece', 'baghdad', 'iraq')
    """
    path = Path(datapath(ANALOGY_FILE))
    questions = []
    section = None
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        fields = line.lower().split()
        if not fields:
            continue
        if section is None or len(fields) != 4:
            raise ValueError(f"{path}:{line_no}: expected four words after a ': section' line, got {line!r}")
        questions.append((section, *fields))
    return questions


def similarity_score(vectors: Vectors, pairs: list[tuple[str, str, float]]) -> dict:
    """Spearman correlation between cosine similarity and the human scores, over the pairs in the vocabulary.

    Args:
        vectors: the word vectors (see the module docstring).
        pairs: (word, word, score) as `load_word_pairs` gives them.

    Returns:
        {"spearman": rho (NaN with fewer than two usable pairs), "used": pairs scored, "total": len(pairs),
        "coverage": used / total (0.0 for no pairs)}.

    Example:
        >>> from types import SimpleNamespace
        >>> vectors = SimpleNamespace(words=["a", "b", "c"], vectors=np.array([[1, 0], [1, 1], [0, 1]], dtype="float32"))
        >>> similarity_score(vectors, [("a", "b", 1.0), ("a", "c", 2.0), ("a", "zzz", 3.0)])["used"]
        2
    """
    index = _index(vectors)
    usable = [(index[a], index[b], score) for a, b, score in pairs if a in index and b in index]
    spearman = math.nan
    if len(usable) >= 2:
        first, second, gold = (np.array(column) for column in zip(*usable))
        cosine = np.sum(_unit(vectors.vectors[first]) * _unit(vectors.vectors[second]), axis=1)
        spearman = float(stats.spearmanr(gold, cosine).statistic)
    return {"spearman": spearman, **_coverage(len(usable), len(pairs))}


def analogy_score(
    vectors: Vectors, questions: list[tuple[str, str, str, str, str]], restrict_vocab: int = 30000
) -> dict:
    """3CosAdd analogy accuracy: the answer to a : b :: c : ? is the word nearest to b - a + c.

    All vectors are unit-normalised; the answer is searched among the first `restrict_vocab` words (the vocabulary
    is frequency-ordered), a, b and c excluded. A question with any word outside those words is skipped.

    Args:
        vectors: the word vectors (see the module docstring).
        questions: (section, a, b, c, expected) as `load_analogies` gives them.
        restrict_vocab: how many of the most frequent words take part.

    Returns:
        {"accuracy": correct / used (NaN if none used), "correct", "used", "total", "coverage": used / total,
        "semantic": the same counts over the semantic sections, "syntactic": over the "gram*" sections,
        "sections": {section: the same counts}}.

    Example:
        >>> from types import SimpleNamespace
        >>> vectors = SimpleNamespace(
        ...     words=["king", "man", "woman", "queen"],
        ...     vectors=np.array([[1, 1], [1, 0], [0, 1], [-0.1, 2]], dtype="float32"),
        ... )
        >>> analogy_score(vectors, [("royal", "man", "king", "woman", "queen")])["correct"]
        1
    """
    index = _index(vectors)
    index = {word: i for word, i in index.items() if i < restrict_vocab}
    usable = [(section, *(index[w] for w in words)) for section, *words in questions if set(words) <= index.keys()]
    matrix = _unit(vectors.vectors[:restrict_vocab])
    ids = np.array([question[1:] for question in usable], dtype=np.int64).reshape(-1, 4)
    correct = np.zeros(len(ids), dtype=bool)
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        scores = (matrix[batch[:, 1]] - matrix[batch[:, 0]] + matrix[batch[:, 2]]) @ matrix.T
        scores[np.arange(len(batch))[:, None], batch[:, :3]] = -np.inf
        correct[start : start + len(batch)] = scores.argmax(axis=1) == batch[:, 3]
    sections = list(dict.fromkeys(question[0] for question in questions))
    used_sections = np.array([question[0] for question in usable], dtype=object)
    all_sections = np.array([question[0] for question in questions], dtype=object)

    def counts(names: list[str]) -> dict:
        used = np.isin(used_sections, names)
        return _accuracy(int(correct[used].sum()), int(used.sum()), int(np.isin(all_sections, names).sum()))

    return {
        **_accuracy(int(correct.sum()), len(usable), len(questions)),
        "semantic": counts([name for name in sections if not name.startswith(SYNTACTIC_PREFIX)]),
        "syntactic": counts([name for name in sections if name.startswith(SYNTACTIC_PREFIX)]),
        "sections": {name: counts([name]) for name in sections},
    }


def evaluate_vectors(vectors: Vectors, restrict_vocab: int = 30000) -> dict:
    """Score word vectors on WordSim-353, SimLex-999 and the Google analogies.

    Args:
        vectors: the word vectors (see the module docstring).
        restrict_vocab: the analogy search vocabulary (see `analogy_score`).

    Returns:
        {"wordsim353": similarity_score(...), "simlex999": similarity_score(...), "analogies": analogy_score(...)}.

    Example:
        >>> from types import SimpleNamespace
        >>> vectors = SimpleNamespace(words=["love", "sex"], vectors=np.eye(2, dtype="float32"))
        >>> evaluate_vectors(vectors)["wordsim353"]["used"]
        1
    """
    scores = {name: similarity_score(vectors, load_word_pairs(name)) for name in WORD_PAIR_FILES}
    scores["analogies"] = analogy_score(vectors, load_analogies(), restrict_vocab)
    return scores


def _index(vectors: Vectors) -> dict[str, int]:
    index = {word: i for i, word in enumerate(vectors.words)}
    if len(index) != len(vectors.words):
        duplicate = next(word for i, word in enumerate(vectors.words) if index[word] != i)
        raise ValueError(f"the vocabulary holds {duplicate!r} more than once: each word needs exactly one vector")
    shape = np.shape(vectors.vectors)
    if len(shape) != 2 or shape[0] != len(vectors.words):
        raise ValueError(f"vectors must be [{len(vectors.words)} words, dim], got shape {shape}")
    return index


def _unit(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32); an all-zero row stays zero, so its cosine with anything is 0."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1)


def _coverage(used: int, total: int) -> dict:
    return {"used": used, "total": total, "coverage": used / total if total else 0.0}


def _accuracy(correct: int, used: int, total: int) -> dict:
    return {"accuracy": correct / used if used else math.nan, "correct": correct, **_coverage(used, total)}
