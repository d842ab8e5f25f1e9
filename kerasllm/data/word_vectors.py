"""Pretrained word vectors: GloVe and word2vec files, embedding matrices aligned to a vocabulary, and
TensorBoard projector files.

Formats (`read_word_vectors`, `write_word_vectors`), each plain or gzip-compressed (detected by content):

* "glove": text without a header, one `word v1 ... vD` line per word (the Stanford GloVe files).
* "word2vec": the same lines after a header line `count dim` (word2vec `-binary 0`, fastText `.vec`).
* "word2vec-binary": the header `count dim\\n`, then per word `word<space>`, D little-endian float32 and
  an optional `\\n` (Mikolov's tool writes it, gensim does not).

Shared rules:

* Text values are written in the shortest form that reads back as the same float32, so text files
  round-trip exactly.
* Words are UTF-8; invalid bytes in a word are an error unless `errors="replace"` (U+FFFD, counted).
* A word may appear once; `duplicates="first"` or `"last"` keeps one occurrence and counts the others.
* Blank lines in text files are ignored. Values must be finite numbers.
* Bad input raises ValueError naming the file and the 1-based line (binary files: record) at fault; a
  missing file raises FileNotFoundError naming the absolute path.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path
from types import MappingProxyType

import numpy as np

from kerasllm.data.readers import _open_bytes
from kerasllm.data.tokenizer import SPECIAL_TOKEN

PathLike = str | os.PathLike

FORMATS = ("glove", "word2vec", "word2vec-binary")
OOV_MODES = ("zeros", "random", "mean")

_BOM = b"\xef\xbb\xbf"
_HEADER = re.compile(rb"\s*(\d+)[ \t]+(\d+)\s*")
# Bytes that never occur in a text line: their presence right after the header means binary vectors.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The separators of the three formats (and of Mikolov's reader); a word holding one cannot be written.
_SEPARATOR = re.compile(r"[ \t\n\r\x0b\x0c]")
_TSV_BREAK = re.compile(r"[\t\n\r]")
_BINARY_CHUNK = 1 << 20
_SHOWN_MISSES = 10


@dataclass
class VectorsReport:
    """What `read_word_vectors` did with a file.

    Args:
        source: the file read.
        format: the format it was read as (after "auto" detection).
        read: vector records read (text lines or binary records), duplicates included.
        skipped_duplicates: records dropped because their word had already been read.
        replaced_utf8: words with invalid UTF-8 read with U+FFFD (`errors="replace"`).

    Example:
        >>> VectorsReport("glove.txt", "glove", read=3, skipped_duplicates=1).kept
        2
    """

    source: str = ""
    format: str = ""
    read: int = 0
    skipped_duplicates: int = 0
    replaced_utf8: int = 0

    @property
    def kept(self) -> int:
        return self.read - self.skipped_duplicates

    def __str__(self) -> str:
        return (
            f"{self.source} ({self.format}): read {self.read}, kept {self.kept}, skipped duplicates "
            f"{self.skipped_duplicates}, words with invalid UTF-8 replaced {self.replaced_utf8}"
        )


@dataclass(eq=False, repr=False)
class WordVectors:
    """Words and their vectors; row i of `vectors` belongs to `words[i]`. Treat it as immutable.

    Args:
        words: distinct words.
        vectors: the matrix [len(words), dim], stored as float32; every value finite.
        report: what the reader did, for vectors read from a file.

    Raises:
        ValueError: `vectors` is not 2-D, its row count differs from the word count, a word repeats
            (named), or a value is not finite.

    Example:
        >>> vectors = WordVectors(["king", "queen", "apple"], [[1.0, 0.9], [0.9, 1.0], [-1.0, 0.2]])
        >>> vectors.dim, len(vectors), "king" in vectors
        (2, 3, True)
        >>> [word for word, score in vectors.most_similar("king", topn=1)]
        ['queen']
    """

    words: list[str]
    vectors: np.ndarray
    report: VectorsReport | None = field(default=None)

    def __post_init__(self) -> None:
        self.words = list(self.words)
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2:
            raise ValueError(f"vectors must be a 2-D matrix [n, dim], got shape {self.vectors.shape}")
        if len(self.words) != len(self.vectors):
            raise ValueError(f"{len(self.words)} words but {len(self.vectors)} vector rows: they must pair up")
        index: dict[str, int] = {}
        for row, word in enumerate(self.words):
            first = index.setdefault(word, row)
            if first != row:
                raise ValueError(f"duplicate word {word!r} at rows {first} and {row}: each word needs one vector")
        self._index = index
        finite = np.isfinite(self.vectors).all(axis=1)
        if not finite.all():
            row = int(np.argmin(finite))
            raise ValueError(f"the vector of {self.words[row]!r} (row {row}) holds a value that is not finite")

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"WordVectors({len(self)} words, dim {self.dim})"

    @property
    def index(self) -> Mapping[str, int]:
        """Word -> row (read-only)."""
        return MappingProxyType(self._index)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def vector(self, word: str) -> np.ndarray:
        """The vector of `word` (KeyError if it has none)."""
        if word not in self._index:
            raise KeyError(f"{word!r} is not one of the {len(self)} words")
        return self.vectors[self._index[word]]

    def most_similar(
        self, word_or_vector: str | np.ndarray | Sequence[float], topn: int = 10, exclude: Iterable[str] = ()
    ) -> list[tuple[str, float]]:
        """The `topn` words of highest cosine similarity, best first (ties in row order).

        Args:
            word_or_vector: a word (which is left out of the result) or a vector of length `dim`.
            topn: how many words to return, at most.
            exclude: words to leave out of the result.

        Returns:
            (word, cosine similarity) pairs; a zero vector scores 0 against anything.

        Raises:
            KeyError: the word has no vector.
            ValueError: the query vector has the wrong length or is all zeros.

        Example:
            >>> WordVectors(["a", "b", "c"], np.eye(3)).most_similar([1.0, 1.0, 0.0], topn=2)
            [('a', 0.7071067690849304), ('b', 0.7071067690849304)]
        """
        excluded = set(exclude)
        if isinstance(word_or_vector, str):
            query = self.vector(word_or_vector)
            excluded.add(word_or_vector)
        else:
            query = np.asarray(word_or_vector, dtype=np.float32)
            if query.shape != (self.dim,):
                raise ValueError(f"the query vector has shape {query.shape}, expected ({self.dim},)")
        norm = np.linalg.norm(query)
        if norm == 0:
            raise ValueError("the query vector is all zeros: its cosine similarity is undefined")
        scores = self._unit @ (query / norm)
        ranked = ((self.words[row], float(scores[row])) for row in np.argsort(-scores, kind="stable"))
        return list(islice(((word, score) for word, score in ranked if word not in excluded), topn))

    def normalized(self) -> WordVectors:
        """The same words with unit-length vectors (an all-zero vector stays zero)."""
        return WordVectors(self.words, _unit_rows(self.vectors))

    @cached_property
    def _unit(self) -> np.ndarray:
        return _unit_rows(self.vectors)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def read_word_vectors(
    path: PathLike, format: str = "auto", *, duplicates: str = "error", errors: str = "strict"
) -> WordVectors:
    """Read a GloVe, word2vec text or word2vec binary file (plain or gzip).

    Args:
        path: the file.
        format: "glove", "word2vec", "word2vec-binary" or "auto": binary if the name ends in `.bin`
            (`.bin.gz`) or the line after a `count dim` header is not text, word2vec text if the first
            line is such a header, otherwise GloVe.
        duplicates: a word read twice is an error ("error"), or keeps its first vector ("first") or its
            last vector ("last"), in the position where it first appeared; skipped records are counted.
        errors: invalid UTF-8 in a word is an error ("strict") or replaced by U+FFFD ("replace").

    Returns:
        The vectors in file order, with `report` saying what was read and skipped.

    Raises:
        FileNotFoundError: no such file (the absolute path is named).
        ValueError: an empty file, a header missing or not matching the vectors, a line with the wrong
            number of values, a value that is not a finite number, a duplicate word or invalid UTF-8
            (each names the file and the line or record).

    Example:
        >>> glove = read_word_vectors("glove.6B.100d.txt.gz")  # doctest: +SKIP
        >>> glove.dim, glove.report.read  # doctest: +SKIP
        (100, 400000)
    """
    path = Path(path)
    _check_choice("format", format, ("auto", *FORMATS))
    _check_choice("duplicates", duplicates, ("error", "first", "last"))
    _check_choice("errors", errors, ("strict", "replace"))
    if not path.is_file():
        raise FileNotFoundError(f"{path.resolve()} does not exist: check the path")
    with _open_bytes(path) as handle:
        if not handle.read(1):
            raise ValueError(f"{path} is empty: there are no word vectors in it")
    if format == "auto":
        format = _detect_format(path)
    collector = _Collector(path, format, duplicates, errors)
    if format == "word2vec-binary":
        dim = _read_binary(path, collector)
    else:
        dim = _read_text(path, collector, header=format == "word2vec")
    return collector.result(dim)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}: use one of {', '.join(map(repr, choices))}")


def _detect_format(path: Path) -> str:
    with _open_bytes(path) as handle:
        header = _HEADER.fullmatch(handle.readline().removeprefix(_BOM))
        if header is None:
            return "glove"
        if path.name.lower().removesuffix(".gz").endswith(".bin"):
            return "word2vec-binary"
        dim = int(header[2])
        record = handle.readline(16 * dim + 4096)
    fields = record.split()
    if len(fields) == dim + 1 and _are_numbers(fields[1:]):
        return "word2vec"
    try:
        record.decode("utf-8")
    except UnicodeDecodeError:
        return "word2vec-binary"
    return "word2vec-binary" if _CONTROL.search(record) else "word2vec"


def _are_numbers(fields: list[bytes]) -> bool:
    try:
        np.array(fields, dtype=np.float64)
    except ValueError:
        return False
    return True


def _header(path: Path, line: bytes, format: str) -> tuple[int, int]:
    match = _HEADER.fullmatch(line.removeprefix(_BOM))
    if match is None:
        found = line[:60].decode("utf-8", errors="replace").rstrip()
        raise ValueError(
            f"{path} line 1: expected the {format} header 'count dim', found {found!r}; "
            "for a file without a header (GloVe) pass format='glove'"
        )
    count, dim = int(match[1]), int(match[2])
    if dim == 0:
        raise ValueError(f"{path} line 1: the header declares vectors of dim 0")
    return count, dim


class _Collector:
    """Gathers (word, vector) records with the duplicate and UTF-8 policies, for both file layouts."""

    def __init__(self, path: Path, format: str, duplicates: str, errors: str) -> None:
        self.path, self.duplicates, self.errors = path, duplicates, errors
        self.unit = "record" if format == "word2vec-binary" else "line"
        self.report = VectorsReport(source=str(path), format=format)
        self.words: list[str] = []
        self.rows: list[np.ndarray] = []
        self.seen: dict[str, tuple[int, int]] = {}  # word -> (row, line or record where it was read)

    def add(self, raw_word: bytes, values: np.ndarray, number: int) -> None:
        where = f"{self.path} {self.unit} {number}"
        try:
            word = raw_word.decode("utf-8")
        except UnicodeDecodeError:
            if self.errors == "strict":
                raise ValueError(
                    f"{where}: the word {raw_word[:40]!r} is not valid UTF-8; pass errors='replace' to read it "
                    "with U+FFFD"
                ) from None
            word = raw_word.decode("utf-8", errors="replace")
            self.report.replaced_utf8 += 1
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: the vector of {word!r} holds a value that is not a finite number")
        self.report.read += 1
        if word not in self.seen:
            self.seen[word] = (len(self.rows), number)
            self.words.append(word)
            self.rows.append(values)
            return
        row, first = self.seen[word]
        if self.duplicates == "error":
            raise ValueError(
                f"{where}: duplicate word {word!r} (first on {self.unit} {first}); pass duplicates='first' or "
                "'last' to keep one of its vectors"
            )
        self.report.skipped_duplicates += 1
        if self.duplicates == "last":
            self.rows[row] = values

    def result(self, dim: int) -> WordVectors:
        vectors = np.stack(self.rows) if self.rows else np.zeros((0, dim), np.float32)
        return WordVectors(self.words, vectors, self.report)


def _read_text(path: Path, collector: _Collector, header: bool) -> int:
    """Read GloVe or word2vec text lines into `collector`; returns the dim."""
    count, dim, dim_source, first_looks_like_header = None, None, "", False
    with _open_bytes(path) as handle:
        lines = enumerate(handle, start=1)
        if header:
            count, dim = _header(path, next(lines)[1], "word2vec")
            dim_source = "the header's dim (line 1)"
        for number, raw in lines:
            fields = (raw.removeprefix(_BOM) if number == 1 else raw).split()
            if not fields:
                continue
            if dim is None:
                dim, dim_source = len(fields) - 1, f"line {number}"
                first_looks_like_header = number == 1 and _HEADER.fullmatch(raw) is not None
                if dim == 0:
                    word = fields[0][:40].decode("utf-8", errors="replace")
                    raise ValueError(f"{path} line {number}: the word {word!r} has no values")
            if len(fields) - 1 != dim:
                hint = (
                    "; line 1 looks like a word2vec header: pass format='word2vec'" if first_looks_like_header else ""
                )
                raise ValueError(
                    f"{path} line {number}: {len(fields) - 1} values, expected {dim} as on {dim_source}{hint}"
                )
            if count is not None and collector.report.read == count:
                raise ValueError(
                    f"{path} line {number}: more vectors than the {count} that the header (line 1) declares"
                )
            collector.add(fields[0], _parse_values(path, number, fields[1:]), number)
    if dim is None:
        raise ValueError(f"{path} has only blank lines: there are no word vectors in it")
    if count is not None and collector.report.read != count:
        raise ValueError(
            f"{path}: the header (line 1) declares {count} vectors but the file has {collector.report.read}"
        )
    return dim


def _parse_values(path: Path, number: int, fields: list[bytes]) -> np.ndarray:
    try:
        # Overflow to inf is reported by the finite check, with the line.
        with np.errstate(over="ignore"):
            return np.array(fields, dtype=np.float32)
    except ValueError:
        position, bad = next((i, f) for i, f in enumerate(fields, start=1) if not _are_numbers([f]))
        found = bad[:40].decode("utf-8", errors="replace")
        raise ValueError(f"{path} line {number}: value {position} ({found!r}) is not a number") from None


def _read_binary(path: Path, collector: _Collector) -> int:
    """Read word2vec binary records into `collector`; returns the dim."""
    with _open_bytes(path) as handle:
        header = handle.readline()
        count, dim = _header(path, header, "word2vec-binary")
        size = 4 * dim
        # `chunk[start:]` is unparsed; `base` is the file offset of chunk[0], for messages.
        chunk, start, base, record = b"", 0, len(header), 0
        while record < count:
            space = chunk.find(b" ", start)
            if space < 0 or len(chunk) - space - 1 < size:
                more = handle.read(_BINARY_CHUNK)
                if not more:
                    raise ValueError(
                        f"{path} record {record + 1} (byte {base + start}): the file ends after {record} of the "
                        f"{count} vectors that the header (line 1) declares"
                    )
                chunk, base, start = chunk[start:] + more, base + start, 0
                continue
            record += 1
            # The newline some writers put after each vector is not part of the next word.
            word = chunk[start:space].lstrip(b"\n")
            if not word:
                raise ValueError(
                    f"{path} record {record} (byte {base + start}): empty word; is the header's dim {dim} right?"
                )
            vector = np.frombuffer(chunk, dtype="<f4", count=dim, offset=space + 1).astype(np.float32)
            collector.add(word, vector, record)
            start = space + 1 + size
        if (chunk[start:] + handle.read(64)).strip():
            raise ValueError(
                f"{path} byte {base + start}: more data after the {count} vectors that the header (line 1) declares"
            )
    return dim


def write_word_vectors(vectors: WordVectors, path: PathLike, format: str) -> None:
    """Write vectors as GloVe text, word2vec text or word2vec binary; gzip-compressed if `path` ends in .gz.

    Text values are written in the shortest form that reads back as the same float32.

    Args:
        vectors: the vectors.
        path: the output file (overwritten).
        format: "glove", "word2vec" or "word2vec-binary".

    Raises:
        ValueError: a word is empty or holds a space, tab or line break (the formats' separators).

    Example:
        >>> write_word_vectors(WordVectors(["a"], [[0.1, 2.0]]), "a.txt", "glove")  # doctest: +SKIP
        >>> open("a.txt").read()  # doctest: +SKIP
        'a 0.1 2.0\\n'
    """
    _check_choice("format", format, FORMATS)
    for row, word in enumerate(vectors.words):
        if not word or _SEPARATOR.search(word):
            raise ValueError(
                f"cannot write the word {word!r} (row {row}) in {format} format: a word must be non-empty and "
                "hold no space, tab or line break, which the format uses as separators"
            )
    path = Path(path)
    # mtime=0: the same vectors give the same bytes.
    with gzip.GzipFile(path, "wb", mtime=0) if path.suffix == ".gz" else path.open("wb") as handle:
        if format != "glove":
            handle.write(f"{len(vectors)} {vectors.dim}\n".encode())
        for word, row in zip(vectors.words, vectors.vectors):
            if format == "word2vec-binary":
                handle.write(word.encode() + b" " + row.astype("<f4").tobytes() + b"\n")
            else:
                handle.write(f"{word} {_format_values(row, ' ')}\n".encode())


def _format_values(row: np.ndarray, separator: str) -> str:
    # str() of a NumPy float32 is its shortest round-tripping decimal (Dragon4), unlike str(float(x)).
    return separator.join(map(str, row))


@dataclass
class AlignmentReport:
    """How `aligned_matrix` filled the rows of a vocabulary.

    Args:
        hits: words found (exactly or by their lowercase form).
        misses: words not found, filled by the `oov` mode.
        lowercase_hits: hits found only by their lowercase form.
        reserved: padding and special tokens ("", "[PAD]", "[UNK]", ...), set to zeros.
        example_misses: the first few missed words.
        oov: how misses were filled.

    Example:
        >>> print(AlignmentReport(hits=1234, misses=56))
        Converted 1234 words (56 misses)
    """

    hits: int = 0
    misses: int = 0
    lowercase_hits: int = 0
    reserved: int = 0
    example_misses: list[str] = field(default_factory=list)
    oov: str = "zeros"

    def __str__(self) -> str:
        details = [
            f"{self.lowercase_hits} found in lowercase" if self.lowercase_hits else "",
            f"{self.reserved} reserved tokens set to zeros" if self.reserved else "",
            f"misses filled with {self.oov}, e.g. {self.example_misses}" if self.example_misses else "",
        ]
        return "; ".join([f"Converted {self.hits} words ({self.misses} misses)", *filter(None, details)])


def aligned_matrix(
    vectors: WordVectors,
    vocabulary: Sequence[str],
    oov: str = "zeros",
    seed: int = 0,
    lowercase_fallback: bool = True,
) -> tuple[np.ndarray, AlignmentReport]:
    """The embedding matrix of a vocabulary: row i is the vector of `vocabulary[i]`.

    Padding and special tokens ("" as in Keras TextVectorization, and `[NAME]` tokens such as [PAD] at
    index 0) always get zeros.

    Args:
        vectors: pretrained vectors.
        vocabulary: the words, index = id.
        oov: what a missing word gets: "zeros", "random" (normal, mean 0, with the standard deviation
            of all the values in `vectors`) or "mean" (the mean vector).
        seed: seed of the "random" rows.
        lowercase_fallback: look a missing word up again in lowercase ("Paris" -> "paris", for the
            uncased GloVe files).

    Returns:
        The float32 matrix [len(vocabulary), vectors.dim] (for `keras.initializers.Constant`) and a report.

    Raises:
        ValueError: unknown `oov` mode, or "random"/"mean" with no vectors to take statistics from.

    Example:
        >>> vectors = WordVectors(["the", "cat"], [[1.0, 0.0], [0.0, 3.0]])
        >>> matrix, report = aligned_matrix(vectors, ["[PAD]", "[UNK]", "The", "dog"], oov="mean")
        >>> matrix.tolist()
        [[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.5, 1.5]]
        >>> report.hits, report.lowercase_hits, report.misses, report.reserved
        (1, 1, 1, 2)
    """
    _check_choice("oov", oov, OOV_MODES)
    if oov != "zeros" and not len(vectors):
        raise ValueError(f"oov={oov!r} needs statistics of the vectors, but there are none: use oov='zeros'")
    matrix = np.zeros((len(vocabulary), vectors.dim), np.float32)
    report = AlignmentReport(oov=oov)
    missed = []
    for row, word in enumerate(vocabulary):
        # Padding ("" in Keras TextVectorization) and the special tokens ([PAD], [UNK], [MASK], ...) have no vector.
        if word == "" or SPECIAL_TOKEN.fullmatch(word):
            report.reserved += 1
        elif word in vectors:
            matrix[row] = vectors.vector(word)
            report.hits += 1
        elif lowercase_fallback and word.lower() in vectors:
            matrix[row] = vectors.vector(word.lower())
            report.hits += 1
            report.lowercase_hits += 1
        else:
            missed.append(row)
    report.misses = len(missed)
    report.example_misses = [vocabulary[row] for row in missed[:_SHOWN_MISSES]]
    if oov == "mean":
        matrix[missed] = vectors.vectors.mean(axis=0)
    elif oov == "random":
        rng = np.random.default_rng(seed)
        matrix[missed] = rng.normal(0.0, vectors.vectors.std(), size=(len(missed), vectors.dim))
    return matrix, report


def write_projector(vectors: WordVectors, directory: PathLike) -> Path:
    """Write TensorBoard Embedding Projector files: `vectors.tsv`, `metadata.tsv`, `projector_config.pbtxt`.

    The metadata has one word per line and no header (a single column); tabs and line breaks in a
    word become spaces.

    Args:
        vectors: the vectors to show.
        directory: where to write the files (created if needed); give it to `tensorboard --logdir`.

    Returns:
        The directory.

    Example:
        >>> write_projector(read_word_vectors("glove.6B.50d.txt"), "logs/glove")  # doctest: +SKIP
        PosixPath('logs/glove')
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "vectors.tsv").open("w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(_format_values(row, "\t") + "\n" for row in vectors.vectors)
    (directory / "metadata.tsv").write_text(
        "".join(_TSV_BREAK.sub(" ", word) + "\n" for word in vectors.words), encoding="utf-8", newline="\n"
    )
    (directory / "projector_config.pbtxt").write_text(
        'embeddings {\n  tensor_path: "vectors.tsv"\n  metadata_path: "metadata.tsv"\n}\n', encoding="utf-8"
    )
    return directory
