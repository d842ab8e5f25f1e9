"""The in-memory corpus types every reader and `kerasllm.data.load` return, and their read report.

All corpora are plain Python lists of `str` (small enough for memory: the largest shared corpus is
SST-2 at 67k sentences) so that they can be inspected, sliced and handed to `tf.data` as they are.
Each one carries a `ReadReport` saying what was read and what was dropped or repaired on the way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

UNLABELLED = -1
"""Label of records whose label is withheld upstream (e.g. the GLUE SST-2 test split)."""


@dataclass
class ReadReport:
    """What a reader did with its input.

    Args:
        source: the file(s) read, for messages.
        read: records (lines, pairs, rows, questions) found in the input, before dropping.
        dropped_empty: records dropped because a text field was empty or whitespace only.
        invalid_utf8: lines that held invalid UTF-8; each bad byte sequence was replaced by U+FFFD
            and the line was kept.
        empty_files: input files with no content at all (they give an empty corpus, not an error).

    Example:
        >>> report = ReadReport("a.txt", read=3, dropped_empty=1)
        >>> report.kept
        2
    """

    source: str = ""
    read: int = 0
    dropped_empty: int = 0
    invalid_utf8: int = 0
    empty_files: int = 0

    @property
    def kept(self) -> int:
        return self.read - self.dropped_empty

    def __add__(self, other: ReadReport) -> ReadReport:
        counts = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "source"}
        source = ", ".join(s for s in (self.source, other.source) if s)
        return ReadReport(source=source, **counts)

    def __str__(self) -> str:
        return (
            f"{self.source}: read {self.read}, kept {self.kept}, dropped empty {self.dropped_empty}, "
            f"invalid UTF-8 lines {self.invalid_utf8}, empty files {self.empty_files}"
        )


@dataclass
class ParallelCorpus:
    """Aligned text pairs: translation (source, target) or dialogue (prompt, response).

    Args:
        sources: source-side texts.
        targets: target-side texts, `targets[i]` belongs to `sources[i]`.
        report: what was read and dropped.
        source_name: short name of the source side (a language code such as "en", or "prompt").
        target_name: short name of the target side.

    Example:
        >>> corpus = ParallelCorpus(["Run!"], ["Cours !"], ReadReport(), "en", "fr")
        >>> list(corpus)
        [('Run!', 'Cours !')]
    """

    sources: list[str]
    targets: list[str]
    report: ReadReport = field(default_factory=ReadReport)
    source_name: str = "source"
    target_name: str = "target"

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.targets):
            raise ValueError(
                f"ParallelCorpus needs as many sources as targets, got {len(self.sources)} and {len(self.targets)}"
            )

    def __len__(self) -> int:
        return len(self.sources)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self.sources, self.targets)

    def text_fields(self) -> dict[str, list[str]]:
        """The texts of each side, keyed by side name (used by statistics)."""
        return {self.source_name: self.sources, self.target_name: self.targets}


@dataclass
class LabelledCorpus:
    """Texts with integer class labels.

    Args:
        texts: the texts.
        labels: `labels[i]` is the class index of `texts[i]` (an index into `label_names`), or
            `UNLABELLED` (-1) where the upstream split withholds labels.
        label_names: class names, index = label.
        report: what was read and dropped.

    Example:
        >>> corpus = LabelledCorpus(["great film"], [1], ["negative", "positive"], ReadReport())
        >>> [(text, corpus.label_names[label]) for text, label in corpus]
        [('great film', 'positive')]
    """

    texts: list[str]
    labels: list[int]
    label_names: list[str]
    report: ReadReport = field(default_factory=ReadReport)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"LabelledCorpus needs one label per text, got {len(self.texts)} texts and {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return zip(self.texts, self.labels)

    def text_fields(self) -> dict[str, list[str]]:
        return {"text": self.texts}


@dataclass
class TextCorpus:
    """Running text for language modelling.

    Args:
        text: the whole text, line breaks kept (character-level models and character splits use it).
        report: what was read; `dropped_empty` counts the blank lines left out of `lines`.

    Example:
        >>> TextCorpus("To be\\n\\nor not").lines
        ['To be', 'or not']
    """

    text: str
    report: ReadReport = field(default_factory=ReadReport)

    @property
    def lines(self) -> list[str]:
        """The non-blank lines, the usual unit for word-level language-model examples."""
        return [line for line in self.text.splitlines() if line.strip()]

    def __len__(self) -> int:
        return len(self.lines)

    def text_fields(self) -> dict[str, list[str]]:
        return {"line": self.lines}


@dataclass
class QARecord:
    """One extractive question with its paragraph and reference answers (SQuAD format).

    Args:
        id: the question id.
        title: the title of the article the paragraph is from.
        context: the paragraph.
        question: the question.
        answers: reference answer texts (dev questions have up to three, possibly repeated).
        answer_starts: character offset of each answer in `context`.
    """

    id: str
    title: str
    context: str
    question: str
    answers: list[str]
    answer_starts: list[int]


@dataclass
class QACorpus:
    """Question-answering records plus the read report.

    Args:
        records: the questions, in file order.
        report: what was read.

    Example:
        >>> record = QARecord("q1", "T", "Paris is in France.", "Where is Paris?", ["France"], [12])
        >>> QACorpus([record])[0].answers
        ['France']
    """

    records: list[QARecord]
    report: ReadReport = field(default_factory=ReadReport)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[QARecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> QARecord:
        return self.records[index]

    def text_fields(self) -> dict[str, list[str]]:
        return {"question": [r.question for r in self.records], "context": [r.context for r in self.records]}


Corpus = ParallelCorpus | LabelledCorpus | TextCorpus | QACorpus
