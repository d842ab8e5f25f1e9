"""Readers for the corpus file formats: parallel files, TSV pairs, labelled TSV/CSV/JSON(L), plain text,
SQuAD JSON and ChatterBot YAML. Plain or gzip-compressed input (detected by content, not by name).

Shared rules, so every corpus is read the same way:

* Decoding: each line is decoded as UTF-8 on its own; a line with invalid bytes is kept, with each bad
  sequence replaced by U+FFFD ("errors='replace'"), and counted in `ReadReport.invalid_utf8`.
* Empty records: a line, pair, row or conversation turn whose text is empty or whitespace only is
  dropped and counted in `ReadReport.dropped_empty`. Kept texts have surrounding whitespace stripped.
* An empty file (zero bytes, or gzip of nothing) is not an error: it gives an empty corpus and is
  counted in `ReadReport.empty_files`.
* A missing file raises FileNotFoundError naming the absolute path that was looked for.
* Structural errors (parallel files with different line counts, a row with too few columns, an unknown
  label, malformed JSON) raise ValueError naming the file (and line), never a partial result.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from kerasllm.data.corpus import UNLABELLED, LabelledCorpus, ParallelCorpus, QACorpus, QARecord, ReadReport, TextCorpus

PathLike = str | os.PathLike
Field = str | int

_GZIP_MAGIC = b"\x1f\x8b"


def _open_bytes(path: Path):
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")


def read_lines(path: PathLike) -> tuple[list[str], ReadReport]:
    """Read every line of a text file, decoding invalid UTF-8 as U+FFFD and counting it.

    Blank lines are kept (callers decide what a blank line means: parallel files must stay aligned).

    Args:
        path: a plain or gzip-compressed text file.

    Returns:
        The lines without their line terminators, and a report whose `read` is the line count.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.resolve()} does not exist: check the path (registered corpora: `kerasllm data list`)"
        )
    # Decoding per line (instead of open(errors="replace")) is what lets us count the repaired lines.
    lines, invalid = [], 0
    with _open_bytes(path) as handle:
        for raw in handle:
            raw = raw.rstrip(b"\r\n")
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(raw.decode("utf-8", errors="replace"))
                invalid += 1
    if lines:
        # A UTF-8 byte-order mark (spreadsheet exports) is not text.
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines, ReadReport(source=path.name, read=len(lines), invalid_utf8=invalid, empty_files=int(not lines))


def read_parallel(
    source_path: PathLike, target_path: PathLike, *, source_name: str = "source", target_name: str = "target"
) -> ParallelCorpus:
    """Read two line-aligned files (line i of one translates line i of the other).

    Args:
        source_path: source-side file, one sentence per line (plain or .gz).
        target_path: target-side file with the same number of lines.
        source_name: name of the source side, e.g. "en".
        target_name: name of the target side, e.g. "de".

    Returns:
        The pairs; a pair with an empty side is dropped and counted.

    Raises:
        ValueError: the files have different line counts (the message names both files and counts).

    Example:
        >>> corpus = read_parallel("train.en.gz", "train.de.gz", source_name="en", target_name="de")  # doctest: +SKIP
    """
    sources, source_report = read_lines(source_path)
    targets, target_report = read_lines(target_path)
    if len(sources) != len(targets):
        raise ValueError(
            f"misaligned parallel files: {source_path} has {len(sources)} lines but {target_path} has {len(targets)} lines"
        )
    report = source_report + target_report
    # The two files hold one set of pairs: count pairs, not lines.
    report.read = len(sources)
    return _keep_non_empty_pairs(zip(sources, targets), report, source_name, target_name)


def read_tsv_pairs(
    path: PathLike, *, columns: tuple[int, int] = (0, 1), source_name: str = "source", target_name: str = "target"
) -> ParallelCorpus:
    """Read text pairs from a tab-separated file (e.g. the manythings.org/Tatoeba `English<TAB>French` files).

    Extra columns (such as the attribution column of newer Tatoeba exports) are ignored.

    Args:
        path: the TSV file (plain or .gz), no header, no quoting.
        columns: the (source, target) column indices.
        source_name: name of the source side, e.g. "en".
        target_name: name of the target side, e.g. "fr".

    Raises:
        ValueError: a non-blank line has fewer columns than needed (names the file and line).

    Example:
        >>> corpus = read_tsv_pairs("fra-eng.tsv.gz", source_name="en", target_name="fr")  # doctest: +SKIP
    """
    lines, report = read_lines(path)
    pairs = []
    for number, line in enumerate(lines, start=1):
        cells = line.split("\t")
        if line.strip() and len(cells) <= max(columns):
            raise ValueError(
                f"{path} line {number}: expected at least {max(columns) + 1} tab-separated columns, found {len(cells)}"
            )
        pairs.append((cells[columns[0]], cells[columns[1]]) if line.strip() else ("", ""))
    return _keep_non_empty_pairs(pairs, report, source_name, target_name)


def read_labelled(
    path: PathLike,
    *,
    text_field: Field | Sequence[Field],
    label_field: Field | None,
    label_values: Sequence[str] | None = None,
    header: bool = True,
    file_format: str | None = None,
) -> LabelledCorpus:
    """Read texts with class labels from TSV, CSV, JSON (a list of objects) or JSON Lines.

    Args:
        path: the file (plain or .gz). The format is taken from the name (`.tsv`, `.csv`, `.json`,
            `.jsonl`, each optionally followed by `.gz`) unless `file_format` is given.
        text_field: column name (with a header, or a JSON key) or column index (without a header) of
            the text; several fields are joined with a space (e.g. AG News title and description).
        label_field: the label's column name or index; None for unlabelled data (labels are `UNLABELLED`).
        label_values: the raw label values in class-index order (e.g. ["ham", "spam"]); a value not in
            it is an error. Default: the sorted distinct values found.
        header: whether a TSV/CSV file starts with a header row naming the columns.
        file_format: one of "tsv", "csv", "json", "jsonl" to override the name.

    Returns:
        A LabelledCorpus whose `label_names` are the raw label values (rename them as needed).

    Example:
        >>> corpus = read_labelled("dev.tsv.gz", text_field="sentence", label_field="label", label_values=["0", "1"])  # doctest: +SKIP
    """
    file_format = file_format or _format_from_name(path)
    text_fields = [text_field] if isinstance(text_field, (str, int)) else list(text_field)
    rows, report = _read_rows(path, file_format, header)
    texts, raw_labels, numbers = [], [], []
    for number, row in rows:
        try:
            text = " ".join(str(row[f]) for f in text_fields).strip()
            label = None if label_field is None else str(row[label_field]).strip()
        except (KeyError, IndexError) as missing:
            raise ValueError(f"{path} record {number}: no field {missing} (fields: {_describe(row)})") from None
        if not text:
            report.dropped_empty += 1
            continue
        texts.append(text)
        raw_labels.append(label)
        numbers.append(number)
    if label_field is None:
        return LabelledCorpus(texts, [UNLABELLED] * len(texts), list(label_values or []), report)
    values = list(label_values) if label_values is not None else sorted(set(raw_labels))
    index = {value: i for i, value in enumerate(values)}
    unknown = sorted(set(raw_labels) - index.keys())
    if unknown:
        first = next(number for number, label in zip(numbers, raw_labels) if label not in index)
        raise ValueError(f"{path} record {first}: unexpected label value(s) {unknown[:5]}, expected one of {values}")
    return LabelledCorpus(texts, [index[label] for label in raw_labels], values, report)


def read_text(path: PathLike) -> TextCorpus:
    """Read a plain-text corpus, keeping line breaks; blank lines are counted as dropped from `.lines`.

    Example:
        >>> read_text("input.txt.gz").text[:14]  # doctest: +SKIP
        'First Citizen:'
    """
    lines, report = read_lines(path)
    report.dropped_empty = sum(not line.strip() for line in lines)
    return TextCorpus("\n".join(lines) + ("\n" if lines else ""), report)


def read_squad(path: PathLike) -> QACorpus:
    """Read a SQuAD v1.1 JSON file into one record per question.

    Example:
        >>> read_squad("dev-v1.1.json.gz")[0].question  # doctest: +SKIP
        'Which NFL team represented the AFC at Super Bowl 50?'
    """
    document, report = _read_json_document(path)
    records = []
    for article in document.get("data", []):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                records.append(
                    QARecord(
                        id=qa["id"],
                        title=article["title"],
                        context=paragraph["context"],
                        question=qa["question"].strip(),
                        answers=[answer["text"] for answer in qa["answers"]],
                        answer_starts=[answer["answer_start"] for answer in qa["answers"]],
                    )
                )
    report.read = len(records)
    kept = [record for record in records if record.question and record.context.strip()]
    report.dropped_empty = len(records) - len(kept)
    return QACorpus(kept, report)


def read_conversations(paths: Iterable[PathLike]) -> ParallelCorpus:
    """Read ChatterBot-style YAML conversations into (prompt, response) pairs.

    A conversation [u0, u1, ..., un] gives the consecutive pairs (u0, u1), (u1, u2), ..., (un-1, un).

    Args:
        paths: YAML files (plain or .gz) with a top-level `conversations:` list of utterance lists.

    Example:
        >>> corpus = read_conversations(["ai.yml.gz"])  # doctest: +SKIP
        >>> corpus.sources[0], corpus.targets[0]  # doctest: +SKIP
        ('What is AI?', 'Artificial Intelligence is the branch of engineering and science devoted to ...')
    """
    import yaml  # only this reader needs PyYAML

    paths = list(paths)
    pairs, report = [], ReadReport()
    for path in paths:
        lines, file_report = read_lines(path)
        report += file_report
        try:
            # BaseLoader keeps every scalar a string: "yes" or "4" are utterances, not a bool or an int.
            document = yaml.load("\n".join(lines), Loader=yaml.BaseLoader) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
        for conversation in document.get("conversations", []):
            pairs.extend(zip(conversation[:-1], conversation[1:]))
    # One summary instead of the list of every file name.
    report.source = f"{len(paths)} conversation file(s)"
    report.read = len(pairs)
    return _keep_non_empty_pairs(pairs, report, "prompt", "response")


def _keep_non_empty_pairs(
    pairs: Iterable[tuple[str, str]], report: ReadReport, source_name: str, target_name: str
) -> ParallelCorpus:
    sources, targets = [], []
    for source, target in pairs:
        source, target = source.strip(), target.strip()
        if source and target:
            sources.append(source)
            targets.append(target)
    report.dropped_empty = report.read - len(sources)
    return ParallelCorpus(sources, targets, report, source_name, target_name)


def _format_from_name(path: PathLike) -> str:
    suffixes = [s.lstrip(".").lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    if not suffixes or suffixes[-1] not in ("tsv", "csv", "json", "jsonl"):
        raise ValueError(
            f"{path}: cannot tell the format from the name; pass file_format='tsv', 'csv', 'json' or 'jsonl'"
        )
    return suffixes[-1]


def _read_rows(path: PathLike, file_format: str, header: bool) -> tuple[list[tuple[int, dict | list]], ReadReport]:
    """Rows as (record number, dict by column name or list by index), blank lines dropped and counted."""
    if file_format == "json":
        document, report = _read_json_document(path)
        if not isinstance(document, list):
            raise ValueError(f"{path}: expected a JSON list of objects, found {type(document).__name__}")
        report.read = len(document)
        return list(enumerate(document, start=1)), report
    lines, report = read_lines(path)
    if file_format == "jsonl":
        rows = []
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path} line {number}: not valid JSON ({error.msg})") from None
        report.read, report.dropped_empty = len(lines), len(lines) - len(rows)
        return rows, report
    if file_format not in ("tsv", "csv"):
        raise ValueError(f"{path}: unknown format {file_format!r}; use 'tsv', 'csv', 'json' or 'jsonl'")
    # GLUE-style TSV has no quoting (a quote is text); CSV follows RFC 4180 quoting.
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if file_format == "tsv" else {}
    table = [
        (number, row) for number, row in enumerate(csv.reader((line + "\n" for line in lines), **dialect), start=1)
    ]
    if header and table:
        names = table.pop(0)[1]
        table = [(number, dict(zip(names, row))) for number, row in table]
    rows = [
        (number, row)
        for number, row in table
        if any(cell.strip() for cell in (row.values() if isinstance(row, dict) else row))
    ]
    report.read = len(table)
    report.dropped_empty = len(table) - len(rows)
    return rows, report


def _read_json_document(path: PathLike) -> tuple[object, ReadReport]:
    lines, report = read_lines(path)
    if not lines:
        return [], report
    try:
        return json.loads("\n".join(lines)), report
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} line {error.lineno}: not valid JSON ({error.msg})") from None


def _describe(row: dict | list) -> str:
    return ", ".join(map(str, row.keys())) if isinstance(row, dict) else f"{len(row)} columns"
