"""All local English text in one reader: the word2vec corpus and the masked-LM pre-training text.

`english_corpus(rule, sources, data_dir)` reads each source through `kerasllm.data.registry.load`, strips
whitespace, drops blank texts and exact duplicates (within and across sources, the first occurrence kept, sources
always in the order of `SOURCES`) and returns an `EnglishCorpus` with the source of every text.

Sources: `multi30k` (English side), `sst2` (sentences), `ag_news` (title and description, as the registry joins
them), `sms_spam`, `squad_contexts` (SQuAD v1.1 paragraphs, each once rather than once per question),
`squad_questions`, `tiny_shakespeare` (non-blank lines), `tatoeba-fra-eng` (English side), and `sample` (the
English side of the Tatoeba sample embedded in the package, which needs no data root; not a default source).

Rules:
    "all": every available split of each source except SST-2 dev and test (only SST-2 train sentences), so the
        AG News, SMS, SQuAD and Multi30K test texts are included. That is fine for unsupervised word vectors but
        transductive for downstream scores measured on those test sets.
    "train": only each corpus's training split (Multi30K train, SST-2 train, the seeded SMS and Tatoeba train
        splits, the first 90% of tiny Shakespeare); AG News and SQuAD are left out, since their only files are
        evaluation sets. For pre-training without leakage into the evaluations.

Words are counted by `kerasllm.data.skipgrams.word_tokens`, the tokenizer the word2vec pipeline trains on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kerasllm.data import registry
from kerasllm.data.corpus import Corpus, TextCorpus
from kerasllm.data.skipgrams import count_words

RULES = ("all", "train")


def _each(get: Callable[[Corpus], Iterable[str]]) -> Callable[[list[Corpus]], list[str]]:
    return lambda corpora: [text for corpus in corpora for text in get(corpus)]


def _joined_lines(corpora: list[Corpus]) -> list[str]:
    # The train/val cut falls inside a line; joining the splits' texts first gives that line back whole.
    return TextCorpus("".join(corpus.text for corpus in corpora)).lines


@dataclass(frozen=True)
class _Source:
    corpus: str
    all_splits: tuple[str, ...]
    train_split: str | None
    texts: Callable[[list[Corpus]], list[str]]
    pair: str | None = None


_ENGLISH_SIDE = _each(lambda corpus: corpus.sources)
_TEXTS = _each(lambda corpus: corpus.texts)

SOURCES: dict[str, _Source] = {
    "multi30k": _Source(
        "multi30k",
        ("train", "val", "test2016", "test2017", "test2017_mscoco", "test2018"),
        "train",
        _ENGLISH_SIDE,
        pair="en-de",
    ),
    "sst2": _Source("sst2", ("train",), "train", _TEXTS),
    "ag_news": _Source("ag_news", ("test",), None, _TEXTS),
    "sms_spam": _Source("sms_spam", ("all",), "train", _TEXTS),
    "squad_contexts": _Source(
        "squad_v1.1", ("dev",), None, _each(lambda corpus: dict.fromkeys(r.context for r in corpus.records))
    ),
    "squad_questions": _Source(
        "squad_v1.1", ("dev",), None, _each(lambda corpus: [r.question for r in corpus.records])
    ),
    "tiny_shakespeare": _Source("tiny_shakespeare", ("train", "val"), "train", _joined_lines),
    "tatoeba-fra-eng": _Source("tatoeba-fra-eng", ("all",), "train", _ENGLISH_SIDE, pair="en-fr"),
    "sample": _Source("sample", ("all",), "train", _ENGLISH_SIDE, pair="en-fr"),
}
"""Every source, in the fixed order in which they are read (the first occurrence of a duplicate is kept)."""

DEFAULT_SOURCES = tuple(name for name in SOURCES if name != "sample")


@dataclass(frozen=True)
class SourceStats:
    """Counts for one source of an `EnglishCorpus`.

    Args:
        source: the source name.
        texts: texts kept.
        duplicates: texts dropped because the same text came earlier (in this source or an earlier one).
        words: `word_tokens` tokens in the kept texts.
    """

    source: str
    texts: int
    duplicates: int
    words: int


@dataclass
class EnglishCorpus:
    """Deduplicated English texts and the source of each.

    Args:
        texts: the texts, whitespace-stripped, no two equal.
        sources: `sources[i]` is the source of `texts[i]`.
        duplicates: source -> texts dropped as duplicates, for every source read (also those left with no text).
        rule: the rule the corpus was read with, "all" or "train".

    Example:
        >>> corpus = english_corpus(sources=["sample"])
        >>> corpus.texts[:2], corpus.sources[0]
        (['Attack!', 'Got it?'], 'sample')
    """

    texts: list[str]
    sources: list[str]
    duplicates: dict[str, int]
    rule: str = "all"

    def __len__(self) -> int:
        return len(self.texts)

    def stats(self) -> list[SourceStats]:
        """Texts, duplicates dropped and word tokens per source, in source order.

        Example:
            >>> [(s.source, s.texts) for s in english_corpus(sources=["sample"]).stats()]
            [('sample', 3483)]
        """
        texts: dict[str, list[str]] = {source: [] for source in self.duplicates}
        for text, source in zip(self.texts, self.sources):
            texts[source].append(text)
        return [
            SourceStats(source, len(kept), self.duplicates[source], sum(count_words(kept).values()))
            for source, kept in texts.items()
        ]

    def format_stats(self) -> str:
        """`stats()` as a text table with a total row.

        Example:
            >>> print(english_corpus(sources=["sample"]).format_stats())  # doctest: +SKIP
        """
        stats = self.stats()
        total = SourceStats(
            "total", sum(s.texts for s in stats), sum(s.duplicates for s in stats), sum(s.words for s in stats)
        )
        rows = [("source", "texts", "duplicates", "words")]
        rows += [(s.source, f"{s.texts:,}", f"{s.duplicates:,}", f"{s.words:,}") for s in [*stats, total]]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join([row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])])
            for row in rows
        ]
        return "\n".join([f"English corpus, rule {self.rule!r}", *lines])


def english_corpus(
    rule: str = "all", sources: Sequence[str] | None = None, data_dir: str | os.PathLike | None = None
) -> EnglishCorpus:
    """Read the local English text of `sources` under `rule` (see the module docstring for both).

    Args:
        rule: "all" (every available split, SST-2 train only) or "train" (training splits only).
        sources: source names (see `SOURCES`), read in `SOURCES` order whatever order they are given in; default
            every shared source the rule allows (`DEFAULT_SOURCES` without AG News and SQuAD for "train").
        data_dir: corpus root; default `$KERASLLM_DATA`, else `../shared/data` (`sample` needs none).

    Returns:
        The deduplicated `EnglishCorpus`.

    Raises:
        ValueError: unknown rule or source, a source the "train" rule excludes, or no text at all.
        FileNotFoundError: a source's files are missing (the message names the path and `$KERASLLM_DATA`).

    Example:
        >>> corpus = english_corpus("train", sources=["sample"])
        >>> len(corpus), set(corpus.sources)
        (3174, {'sample'})
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; rules: {', '.join(RULES)}")
    if sources is None:
        names = [name for name in DEFAULT_SOURCES if rule == "all" or SOURCES[name].train_split]
    else:
        unknown = [name for name in sources if name not in SOURCES]
        if unknown:
            raise ValueError(f"unknown English source {unknown[0]!r}; sources: {', '.join(SOURCES)}")
        excluded = [name for name in sources if rule == "train" and not SOURCES[name].train_split]
        if excluded:
            raise ValueError(
                f"source {excluded[0]!r} has no training split (its only file is an evaluation set): "
                "leave it out of rule 'train' or use rule 'all'"
            )
        names = [name for name in SOURCES if name in sources]
    texts: list[str] = []
    text_sources: list[str] = []
    duplicates: dict[str, int] = {}
    seen: set[str] = set()
    for name in names:
        source = SOURCES[name]
        splits = source.all_splits if rule == "all" else (source.train_split,)
        corpora = [registry.load(source.corpus, split, source.pair, data_dir) for split in splits]
        duplicates[name] = 0
        for text in source.texts(corpora):
            text = text.strip()
            if not text:
                continue
            if text in seen:
                duplicates[name] += 1
                continue
            seen.add(text)
            texts.append(text)
            text_sources.append(name)
    if not texts:
        raise ValueError(f"no English text in sources {names} under rule {rule!r}")
    return EnglishCorpus(texts, text_sources, duplicates, rule)
