"""Corpus statistics: records per split, token-length percentiles and [UNK] share under a WordPiece
vocabulary trained on the train split (`kerasllm data stats NAME`)."""

from __future__ import annotations

import os
import time

import numpy as np
from tqdm import tqdm

from kerasllm.data import registry
from kerasllm.data.corpus import LabelledCorpus, ParallelCorpus, QACorpus, TextCorpus

_RECORD_NOUN = {ParallelCorpus: "pairs", LabelledCorpus: "texts", TextCorpus: "lines", QACorpus: "questions"}


def corpus_stats(
    name: str, pair: str | None = None, vocab_size: int = 8000, data_dir: str | os.PathLike | None = None
) -> dict:
    """Count records per split and measure token lengths and [UNK] share per side and split.

    One vocabulary per side (e.g. en and de) is trained on the train split (or, for corpora that
    ship only an evaluation split, on that split). Token lengths count WordPiece ids without
    [START]/[END]. On a terminal, a transient progress bar on stderr names each step.

    Args:
        name: registry name, e.g. "multi30k".
        pair: language pair for translation corpora, e.g. "en-de".
        vocab_size: requested vocabulary size per side.
        data_dir: corpus root (default `$KERASLLM_DATA`, else ../shared/data).

    Returns:
        {"name", "task", "pair", "record_noun", "vocabulary_split", "vocab_size", "vocabulary_sizes"
        {side: size}, "seconds", "splits": {split: {"records", "dropped_empty", "invalid_utf8",
        "sides": {side: {"p50", "p90", "p99", "max", "unk_share"}}}}}.

    Example:
        >>> print(format_stats(corpus_stats("sample", vocab_size=2000)))  # doctest: +SKIP
    """
    started = time.perf_counter()
    entry = registry.entry(name)
    corpora = {split: registry.load(name, split, pair, data_dir) for split in entry.split_names}
    # Imported after loading so that a bad name or a missing corpus is reported without importing TensorFlow.
    from kerasllm.data.tokenizer import UNK_ID, SubwordTokenizer, train_wordpiece_vocabulary

    vocabulary_split = "train" if "train" in corpora else entry.split_names[0]
    sides = list(corpora[vocabulary_split].text_fields())
    tokenizers = {}
    # Vocabulary training is the slow part (seconds per side on Multi30K): a transient bar on stderr,
    # shown only on a terminal (disable=None) and naming the step before it starts.
    with tqdm(total=len(sides) * (1 + len(corpora)), leave=False, disable=None) as progress:
        for side in sides:
            progress.set_description(f"WordPiece vocabulary {side} on {vocabulary_split}")
            texts = corpora[vocabulary_split].text_fields()[side]
            tokenizers[side] = SubwordTokenizer(train_wordpiece_vocabulary(texts, vocab_size))
            progress.update()
        splits = {}
        for split, corpus in corpora.items():
            progress.set_description(f"token lengths {split}")
            side_stats = {}
            for side, texts in corpus.text_fields().items():
                side_stats[side] = _length_stats(tokenizers[side].tokenize(texts), UNK_ID)
                progress.update()
            splits[split] = {
                "records": len(corpus),
                "dropped_empty": corpus.report.dropped_empty,
                "invalid_utf8": corpus.report.invalid_utf8,
                "sides": side_stats,
            }
    return {
        "name": name,
        "task": entry.task,
        "pair": pair or (entry.pairs[0] if entry.pairs else None),
        "record_noun": _RECORD_NOUN[type(corpora[vocabulary_split])],
        "vocabulary_split": vocabulary_split,
        "vocab_size": vocab_size,
        "vocabulary_sizes": {side: tokenizer.vocabulary_size for side, tokenizer in tokenizers.items()},
        "seconds": time.perf_counter() - started,
        "splits": splits,
    }


def format_stats(stats: dict) -> str:
    """Render `corpus_stats` output as a text table."""
    pair = f", pair {stats['pair']}" if stats["pair"] else ""
    sizes = ", ".join(f"{side} {size}" for side, size in stats["vocabulary_sizes"].items())
    noun = stats["record_noun"]
    header = ("split", noun, "dropped", "bad utf8", "side", "p50", "p90", "p99", "max", "[UNK]")
    rows = [header]
    for split, split_stats in stats["splits"].items():
        for index, (side, s) in enumerate(split_stats["sides"].items()):
            counts = (
                split,
                str(split_stats["records"]),
                str(split_stats["dropped_empty"]),
                str(split_stats["invalid_utf8"]),
            )
            lengths = (side, str(s["p50"]), str(s["p90"]), str(s["p99"]), str(s["max"]), f"{100 * s['unk_share']:.2f}%")
            rows.append((counts if index == 0 else ("",) * len(counts)) + lengths)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    # Text columns left-aligned, numbers right-aligned.
    align = [
        str.ljust,
        str.rjust,
        str.rjust,
        str.rjust,
        str.ljust,
        str.rjust,
        str.rjust,
        str.rjust,
        str.rjust,
        str.rjust,
    ]
    table = ["  ".join(a(cell, w) for a, cell, w in zip(align, row, widths)).rstrip() for row in rows]
    return "\n".join(
        [
            f"{stats['name']} ({stats['task']}){pair}",
            f"WordPiece vocabularies (cased, whitespace pre-split) trained on {stats['vocabulary_split']}, "
            f"requested {stats['vocab_size']}: {sizes}",
            "token lengths in WordPiece ids without [START]/[END]; [UNK] = share of all ids",
            "",
            *table,
            "",
            f"({stats['seconds']:.1f} s)",
        ]
    )


def _length_stats(ids, unk_id: int) -> dict:
    lengths = ids.row_lengths().numpy()
    flat = ids.flat_values.numpy()
    if not len(lengths):
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0, "unk_share": 0.0}
    # "higher" reports token counts that actually occur rather than interpolated fractions.
    p50, p90, p99 = (int(v) for v in np.percentile(lengths, [50, 90, 99], method="higher"))
    unk_share = float(np.mean(flat == unk_id)) if flat.size else 0.0
    return {"p50": p50, "p90": p90, "p99": p99, "max": int(lengths.max()), "unk_share": unk_share}
