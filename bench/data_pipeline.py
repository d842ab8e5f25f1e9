"""Benchmark the seq2seq tf.data pipeline on Multi30K en-de train.

Measures examples/s for the first epoch (in-graph tokenization, filling the cache) and for a
steady-state epoch (read from the cache), plus the padding share of the bucketed batches.

    python bench/data_pipeline.py [--tokens-per-batch 4096] [--max-length 64] [--epochs 3]

Reads the corpora from $KERASLLM_DATA (default ../shared/data); exits with a message if absent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the seq2seq tf.data pipeline on Multi30K en-de train.")
    parser.add_argument("--tokens-per-batch", type=int, default=4096)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=4, help="epochs to time (the first includes tokenization)")
    args = parser.parse_args(argv)

    from kerasllm.data import registry

    root, origin = registry.data_root()
    if not (root / "multi30k").is_dir():
        print(
            f"bench/data_pipeline.py: Multi30K not found under {root.resolve()} (from {origin}); "
            f"set {registry.ENV_VAR} to the shared data folder (the one holding multi30k/).",
            file=sys.stderr,
        )
        return 1
    corpus = registry.load("multi30k", "train", "en-de")

    from kerasllm.data.pipeline import make_seq2seq_dataset, measure_batches
    from kerasllm.data.tokenizer import SubwordTokenizer, train_wordpiece_vocabulary

    started = time.perf_counter()
    english = SubwordTokenizer(train_wordpiece_vocabulary(corpus.sources, args.vocab_size))
    german = SubwordTokenizer(train_wordpiece_vocabulary(corpus.targets, args.vocab_size))
    vocabulary_seconds = time.perf_counter() - started

    rows, steady = [], []
    started = time.perf_counter()
    # Building the dataset runs one counting pass that tokenizes and fills the cache: timed with epoch 1.
    dataset = make_seq2seq_dataset(
        corpus, english, german, max_length=args.max_length, tokens_per_batch=args.tokens_per_batch
    )
    for epoch in range(1, args.epochs + 1):
        if epoch > 1:
            started = time.perf_counter()
        batches = sum(1 for _ in dataset)
        seconds = time.perf_counter() - started
        kind = "build + first (tokenize, cache)" if epoch == 1 else "cached"
        rows.append((f"epoch {epoch}: {kind}", f"{len(corpus) / seconds:,.0f}", f"{seconds:.2f}", str(batches)))
        if epoch > 1:
            steady.append(seconds)
    if steady:
        # The median, because the machine may be shared and single epochs are noisy.
        median = statistics.median(steady)
        rows.append(
            (
                f"steady state: median of epochs 2-{args.epochs}",
                f"{len(corpus) / median:,.0f}",
                f"{median:.2f}",
                str(batches),
            )
        )
    stats = measure_batches(dataset)

    print(f"Multi30K en-de train: {len(corpus)} pairs, {os.cpu_count()} CPU cores, TensorFlow tf.data")
    print(
        f"vocabularies: en {english.vocabulary_size}, de {german.vocabulary_size} WordPiece pieces "
        f"(requested {args.vocab_size}), trained in {vocabulary_seconds:.1f} s (not in the timings below)"
    )
    print(f"max_length {args.max_length}, tokens_per_batch {args.tokens_per_batch}\n")
    header = ("pass", "examples/s", "seconds", "batches")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    lengths = sorted({length for _, length in stats.shapes})
    print(
        f"\npadding share {100 * stats.padding_share:.1f}% (encoder + decoder inputs); tokens per batch mean "
        f"{stats.mean_tokens_per_batch:.0f}, max {stats.max_tokens_per_batch} (budget {args.tokens_per_batch}); "
        f"{len(lengths)} padded lengths {lengths}"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
    sys.exit(main())
