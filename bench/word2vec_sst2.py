"""Word vectors downstream: the SST-2 BiLSTM started from our word2vec vectors against a random start.

    python bench/word2vec_sst2.py --vectors RUN_DIR --seeds 0 1 2

RUN_DIR is a trained `kerasllm word2vec train` run (100-wide skip-gram vectors on all local English text; SST-2's
dev and test sentences are not in that corpus, only its training sentences). Both arms are the `bilstm` preset with
a 100-wide embedding (the vectors' width) and nothing else changed; the word2vec arm starts its embedding from the
vectors (trainable, misses at zeros). Each arm trains once per seed with `model.fit` (runs in RUNS_DIR, reused when
present) and is scored on GLUE dev (the classify app's sst2 test split). Writes REPORT_DIR/sst2.md and sst2.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decode_speed import cpu_description  # noqa: E402

from apps.classify import app as classify  # noqa: E402
from apps.classify.config import ClassifyConfig  # noqa: E402
from apps.word2vec import app as word2vec  # noqa: E402
from kerasllm.metrics import mean_sd  # noqa: E402


def arm_config(vectors: Path | None, dim: int, seed: int) -> ClassifyConfig:
    values = ClassifyConfig.load("bilstm").to_dict()
    values["model_args"] = {**values["model_args"], "embedding_dim": dim}
    values.update(seed=seed, embeddings=str(vectors) if vectors else None)
    return ClassifyConfig.from_dict(values, where="bench/word2vec_sst2.py")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", required=True, help="a trained word2vec run directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs-dir", default=None, help="where the classifier runs go (default: a temporary folder)")
    parser.add_argument("--report-dir", default=str(Path(__file__).with_name("word2vec")))
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="word2vec-sst2-"))
    report_dir = Path(args.report_dir)
    vectors_file = runs_dir / "vectors.bin"
    if not vectors_file.exists():
        runs_dir.mkdir(parents=True, exist_ok=True)
        word2vec.export_vectors(args.vectors, vectors_file, "word2vec-binary")
    dim = word2vec.load_vectors(args.vectors).dim

    arms: dict[str, list[dict]] = {"random start": [], "word2vec start": []}
    for seed in args.seeds:
        for arm, vectors in (("random start", None), ("word2vec start", vectors_file)):
            run_dir = runs_dir / f"{'w2v' if vectors else 'random'}-s{seed}"
            classify.train(arm_config(vectors, dim, seed), run_dir, corpus="sst2", verbose=2)
            scores = classify.evaluate(run_dir, split="test")
            history = (run_dir / "history.csv").read_text().splitlines()
            finished = json.loads((run_dir / "finished.json").read_text())
            embeddings = run_dir / "embeddings.json"
            arms[arm].append(
                {
                    "seed": seed,
                    "accuracy": scores["accuracy"],
                    "epochs": len(history) - 1,
                    "training_seconds": finished["session_seconds"],
                    "embeddings": json.loads(embeddings.read_text()) if embeddings.exists() else None,
                }
            )
            print(f"{arm} seed {seed}: dev accuracy {scores['accuracy']:.4f}", flush=True)

    command = "python bench/word2vec_sst2.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    summary = {arm: mean_sd([100 * run["accuracy"] for run in runs]) for arm, runs in arms.items()}
    results = {"cpu": cpu_description(), "command": command, "vectors": args.vectors, "arms": arms, "summary": summary}
    (report_dir / "sst2.json").write_text(json.dumps(results, indent=2) + "\n")
    coverage = arms["word2vec start"][0]["embeddings"]
    lines = [
        "# SST-2 BiLSTM: word2vec start against random start",
        "",
        f"Command: `{command}`  ",
        f"Machine: {results['cpu']}. The `bilstm` preset with a {dim}-wide embedding in both arms; GLUE dev (872 "
        f"sentences, the classify app's sst2 test split); {len(args.seeds)} seeds each. The vectors: "
        f"{coverage['hits']:,} of the WordPiece vocabulary's tokens found ({coverage['misses']:,} misses at zeros, "
        f"{coverage['reserved']} reserved), trainable.",
        "",
        "| start | dev accuracy (%) | runs | mean training s |",
        "|---|---:|---:|---:|",
    ]
    for arm, runs in arms.items():
        seconds = sum(run["training_seconds"] for run in runs) / len(runs)
        lines.append(f"| {arm} | {summary[arm]['mean']:.1f} ± {summary[arm]['sd']:.1f} | {len(runs)} | {seconds:.0f} |")
    (report_dir / "sst2.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
