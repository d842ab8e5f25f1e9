"""`kerasllm demo`: the data layer end to end on the embedded English-French sample (no shared data needed).

Loads the sample, trains one WordPiece vocabulary per language, builds the bucketed seq2seq pipeline,
runs one epoch and prints what it did.
"""

from __future__ import annotations

import time

MAX_LENGTH = 64
TOKENS_PER_BATCH = 2048
VOCABULARY_SIZE = 2000
MIN_FREQUENCY = 2  # the sample is small: keep pieces seen at least twice


def main() -> None:
    """Run the demo and print a report to stdout."""
    started = time.perf_counter()
    from kerasllm.data import registry

    splits = {split: registry.load("sample", split, "en-fr") for split in ("train", "val", "test")}
    train = splits["train"]
    print("kerasllm demo: data pipeline on the embedded sample (Tatoeba English-French, CC BY 2.0 FR)")
    print(
        "corpus      sample en-fr: "
        + " / ".join(f"{split} {len(corpus)}" for split, corpus in splits.items())
        + f" pairs; read {train.report.read}, dropped empty {train.report.dropped_empty}, invalid UTF-8 {train.report.invalid_utf8}"
    )

    imported = time.perf_counter()
    from kerasllm.data.pipeline import make_seq2seq_dataset, measure_batches
    from kerasllm.data.tokenizer import SubwordTokenizer, train_wordpiece_vocabulary

    import_seconds = time.perf_counter() - imported
    trained = time.perf_counter()
    english = SubwordTokenizer(train_wordpiece_vocabulary(train.sources, VOCABULARY_SIZE, min_frequency=MIN_FREQUENCY))
    french = SubwordTokenizer(train_wordpiece_vocabulary(train.targets, VOCABULARY_SIZE, min_frequency=MIN_FREQUENCY))
    print(
        f"vocabulary  WordPiece (cased, whitespace pre-split), requested {VOCABULARY_SIZE}: en {english.vocabulary_size}, "
        f"fr {french.vocabulary_size} pieces ({time.perf_counter() - trained:.1f} s)"
    )

    dataset = make_seq2seq_dataset(train, english, french, max_length=MAX_LENGTH, tokens_per_batch=TOKENS_PER_BATCH)
    epoch = time.perf_counter()
    batches = measure_batches(dataset)
    epoch_seconds = time.perf_counter() - epoch
    lengths = sorted({length for _, length in batches.shapes})
    print(
        f"pipeline    max_length {MAX_LENGTH}, tokens_per_batch {TOKENS_PER_BATCH}: one epoch = {batches.batches} batches, "
        f"{batches.examples} pairs in {epoch_seconds:.1f} s (tokenizing included)"
    )
    print(
        f"batches     padded lengths {lengths}; tokens per batch (batch x length) mean {batches.mean_tokens_per_batch:.0f}, "
        f"max {batches.max_tokens_per_batch}; padding share {100 * batches.padding_share:.1f}%"
    )

    # The longest test pair shows the most subword pieces and attached punctuation.
    source, target = max(splits["test"], key=lambda pair: len(pair[0]))
    ids = english.tokenize([source])
    pieces = [english.vocabulary[i] for i in ids[0].numpy()]
    back = english.detokenize(ids)[0].numpy().decode("utf-8")
    (encoder_tokens, decoder_inputs), decoder_targets = next(iter(dataset))
    print(f"example     en text    {source!r} (fr: {target!r})")
    print(f"            ids        {ids[0].numpy().tolist()}")
    print(f"            pieces     {pieces}")
    print(f"            detokenized {back!r} (round trip {'exact' if back == source else 'differs'})")
    print(
        f"            a batch:   encoder_tokens {tuple(encoder_tokens.shape)}, decoder_inputs {tuple(decoder_inputs.shape)}, "
        f"decoder_targets {tuple(decoder_targets.shape)}, first decoder_inputs row {decoder_inputs[0].numpy().tolist()}"
    )
    print(
        f"time        {time.perf_counter() - started:.1f} s in all ({import_seconds:.1f} s of it importing TensorFlow)"
    )


if __name__ == "__main__":
    main()
