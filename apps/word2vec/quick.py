"""`kerasllm word2vec --quick`: the word2vec app end to end in about a minute on the embedded Tatoeba English side.

Trains tiny skip-gram vectors with `model.fit` (resumed or reused when its run directory already holds them), scores
them on the word benchmarks (low on 3,483 short sentences: this checks the path, not the quality), prints a few
neighbours, writes them as GloVe text and reads them back, exports the neighbours SavedModel, verifies it in a fresh
process and asks it for neighbours. Needs no ../shared.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from apps.word2vec import app
from apps.word2vec.cli import format_scores
from apps.word2vec.config import Word2VecConfig
from kerasllm import runner
from kerasllm.data.word_vectors import read_word_vectors
from kerasllm.export import format_report, verify_export

CORPUS = "sample"
PRESET = "tiny"
WORDS = ["tom", "house", "good"]


def main(run_dir: str | Path = "runs/word2vec-quick", base_path: str | Path = "saved_models/word2vec") -> None:
    started = time.perf_counter()
    run_dir = Path(run_dir)
    print(f"1/4 train {PRESET} skip-gram vectors on the embedded Tatoeba English sentences -> {run_dir}")
    app.train(Word2VecConfig.load(PRESET), run_dir, corpus=CORPUS, verbose=2)
    print(format_scores(app.evaluate(run_dir)))

    vectors = app.load_vectors(run_dir)
    print("2/4 neighbours:")
    for word in WORDS:
        print(f"    {word}: {', '.join(neighbour for neighbour, _ in vectors.most_similar(word, topn=5))}")
    glove = run_dir / "vectors.glove.txt"
    app.export_vectors(run_dir, glove, "glove")
    read_back = read_word_vectors(glove)
    if read_back.words != vectors.words or not np.array_equal(read_back.vectors, vectors.vectors):
        raise SystemExit(f"{glove} did not read back to the same vectors")
    print(f"    {len(vectors):,} vectors of {vectors.dim} written to {glove} and read back exactly")

    version_dir = runner.export(app.APP, run_dir, base_path)
    print(f"3/4 export: {version_dir}")
    report = verify_export(version_dir)
    print(format_report(report))
    if not report["ok"]:
        raise SystemExit("the exported SavedModel failed verification")

    import tensorflow as tf

    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    outputs = serve(word=tf.constant([*WORDS, "", "qwertyuiop"]))
    print("4/4 neighbours through the SavedModel:")
    for word, known, neighbours in zip(
        [*WORDS, "", "qwertyuiop"], outputs["known"].numpy(), outputs["neighbours"].numpy()
    ):
        found = ", ".join(n.decode() for n in neighbours[:5]) if known else "(not in the vocabulary)"
        print(f"    {word!r}: {found}")
    print(f"done in {time.perf_counter() - started:.0f} s")
