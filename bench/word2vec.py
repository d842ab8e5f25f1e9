"""The word2vec report: our skip-gram (and CBOW) trained with model.fit against gensim's Word2Vec on the same corpus.

    python bench/word2vec.py --seeds 0 1 2 --cbow

For each seed: `kerasllm word2vec train --config skipgram` on the whole local English corpus (its training time and
words/s from the run), scored on WordSim-353, SimLex-999 and the Google analogies; then gensim's Word2Vec on the same
token lists (our tokenizer's output) with the same vocabulary cut-off, dimension, window, negatives, subsampling,
learning rates and epochs, with 2 workers (and 1, for reference), in the same process after ours, scored the same
way. Words/s counts every corpus token of every epoch over the training wall time, for both. Writes
REPORT_DIR/report.md, results.json, projection.png (PCA of a few word groups, ours and gensim's) and the nearest
neighbours of a few words.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from decode_speed import cpu_description  # noqa: E402

from apps.word2vec import app  # noqa: E402
from apps.word2vec.config import Word2VecConfig  # noqa: E402
from apps.word2vec.evaluation import evaluate_vectors  # noqa: E402
from kerasllm.data.english import english_corpus  # noqa: E402
from kerasllm.data.skipgrams import tokenized  # noqa: E402
from kerasllm.data.word_vectors import WordVectors  # noqa: E402
from kerasllm.metrics import mean_sd  # noqa: E402

# Issue 19's targets.
SPEARMAN_MARGIN, SPEED_TARGET = 0.03, 0.3
NEIGHBOUR_WORDS = ["king", "woman", "dog", "red", "good", "football", "computer", "three"]
GROUPS = {
    "family": ["mother", "father", "son", "daughter", "brother", "sister", "wife", "husband"],
    "colours": ["red", "blue", "green", "yellow", "black", "white", "brown", "orange"],
    "numbers": ["two", "three", "four", "five", "six", "seven", "eight", "ten"],
    "animals": ["dog", "cat", "horse", "bird", "cow", "sheep", "fish", "bear"],
    "sports": ["football", "soccer", "basketball", "tennis", "baseball", "hockey", "golf", "rugby"],
}


def ours(config: Word2VecConfig, runs_dir: Path, name: str, total_words: int) -> tuple[dict, WordVectors]:
    run_dir = runs_dir / name
    app.train(config, run_dir, corpus="english", verbose=2)
    finished = json.loads((run_dir / "finished.json").read_text())
    seconds = finished["session_seconds"]
    vectors = app.load_vectors(run_dir)
    return {
        "engine": "ours",
        "seconds": seconds,
        "words_per_second": round(config.epochs * total_words / seconds),
        "peak_rss_mb": finished["peak_rss_mb"],
        "scores": evaluate_vectors(vectors),
    }, vectors


def gensim_run(config: Word2VecConfig, tokens: list[list[str]], seed: int, workers: int, total_words: int):
    from gensim.models import Word2Vec as GensimWord2Vec

    started = time.perf_counter()
    model = GensimWord2Vec(
        tokens,
        vector_size=config.model_args["dim"],
        window=config.window,
        min_count=config.min_count,
        max_final_vocab=config.vocabulary_size,
        sg=int(config.architecture == "skipgram"),
        cbow_mean=1,
        hs=0,
        negative=config.negatives,
        ns_exponent=config.ns_exponent,
        sample=config.subsample,
        alpha=config.alpha,
        min_alpha=config.min_alpha,
        epochs=config.epochs,
        workers=workers,
        seed=seed,
    )
    seconds = time.perf_counter() - started
    vectors = WordVectors(list(model.wv.index_to_key), model.wv.vectors)
    return {
        "engine": f"gensim ({workers} worker{'s' if workers > 1 else ''})",
        "seconds": round(seconds, 1),
        "words_per_second": round(config.epochs * total_words / seconds),
        "scores": evaluate_vectors(vectors),
    }, vectors


def neighbours(vectors: WordVectors) -> dict[str, list[str]]:
    return {w: [n for n, _ in vectors.most_similar(w, topn=6)] for w in NEIGHBOUR_WORDS if w in vectors}


def projection_plot(pairs: dict[str, WordVectors], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 5.2))
    for axis, (title, vectors) in zip(np.atleast_1d(axes), pairs.items()):
        words = [(group, w) for group, members in GROUPS.items() for w in members if w in vectors]
        matrix = vectors.normalized().vectors[[vectors.index[w] for _, w in words]]
        centred = matrix - matrix.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        points = centred @ components[:2].T
        for group in GROUPS:
            rows = [i for i, (g, _) in enumerate(words) if g == group]
            axis.scatter(points[rows, 0], points[rows, 1], label=group, s=18)
            for i in rows:
                axis.annotate(words[i][1], points[i], fontsize=7, xytext=(2, 2), textcoords="offset points")
        axis.set_title(f"{title}: PCA of unit vectors")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def summary(runs: list[dict], key: str) -> dict[str, float]:
    return mean_sd([run["scores"][key]["spearman" if key != "analogies" else "accuracy"] for run in runs])


def measure_architecture(
    config: Word2VecConfig, seeds: list[int], tokens: list[list[str]], total_words: int, runs_dir: Path
) -> dict[str, Any]:
    rows: dict[str, list[dict]] = {"ours": [], "gensim (2 workers)": [], "gensim (1 worker)": []}
    vectors = {}
    for seed in seeds:
        config.seed = seed
        result, vectors["ours"] = ours(config, runs_dir, f"{config.architecture}-{seed}", total_words)
        rows["ours"].append({"seed": seed, **result})
        for workers in (2, 1) if seed == seeds[0] else (2,):
            result, found = gensim_run(config, tokens, seed, workers, total_words)
            rows[result["engine"]].append({"seed": seed, **result})
            vectors.setdefault("gensim", found)
        print(json.dumps({engine: r[-1]["scores"]["wordsim353"]["spearman"] for engine, r in rows.items() if r}))
    return {
        "config": config.to_dict(),
        "runs": rows,
        "summary": {
            engine: {
                **{key: summary(runs, key) for key in ("wordsim353", "simlex999", "analogies")},
                "words_per_second": mean_sd([r["words_per_second"] for r in runs])["mean"],
            }
            for engine, runs in rows.items()
        },
        "vocabulary_size": len(vectors["ours"]),
        "gensim_vocabulary_size": len(vectors["gensim"]),
        "neighbours": {"ours": neighbours(vectors["ours"]), "gensim": neighbours(vectors["gensim"])},
        "_vectors": vectors,
    }


def report(results: dict[str, Any], command: str) -> str:
    corpus = results["corpus"]
    lines = [
        "# word2vec: our skip-gram (model.fit) against gensim on the same corpus",
        "",
        f"Command: `{command}`  ",
        f"Machine: {results['cpu']}. Corpus: all local English text (`english_corpus('all')`: {corpus['texts']:,} "
        f"deduplicated texts, {corpus['words']:,} tokens; a ninth of text8, so absolute scores are low — the "
        "side-by-side on the same text is what counts). Both engines read the same token lists (our tokenizer).",
        "",
    ]
    for architecture, result in results["architectures"].items():
        config = result["config"]
        seeds = sorted({r["seed"] for r in result["runs"]["ours"]})
        lines += [
            f"## {architecture}: dim {config['model_args']['dim']}, window {config['window']}, {config['negatives']} "
            f"negatives, subsample {config['subsample']}, min_count {config['min_count']}, {config['epochs']} epochs, "
            f"α {config['alpha']} → {config['min_alpha']}; seeds {seeds}",
            "",
            f"Vocabulary: ours {result['vocabulary_size']:,} words, gensim {result['gensim_vocabulary_size']:,}.",
            "",
            "| engine | WordSim-353 ρ | SimLex-999 ρ | analogy accuracy | words/s | runs |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for engine, summary_row in result["summary"].items():
            cells = [
                f"{summary_row[key]['mean']:.4f} ± {summary_row[key]['sd']:.4f}"
                for key in ("wordsim353", "simlex999", "analogies")
            ]
            runs = len(result["runs"][engine])
            lines.append(f"| {engine} | {' | '.join(cells)} | {summary_row['words_per_second']:,.0f} | {runs} |")
        first = result["runs"]["ours"][0]["scores"]
        lines += [
            "",
            f"Coverage (pairs / questions with every word in our vocabulary): WordSim-353 "
            f"{first['wordsim353']['coverage']:.1%}, SimLex-999 {first['simlex999']['coverage']:.1%}, analogies "
            f"{first['analogies']['coverage']:.1%} (among the 30,000 most frequent words).",
            "",
        ]
        ours_row, gensim_row = result["summary"]["ours"], result["summary"]["gensim (2 workers)"]
        for key in ("wordsim353", "simlex999"):
            gap = ours_row[key]["mean"] - gensim_row[key]["mean"]
            met = "met" if gap >= -SPEARMAN_MARGIN else "missed"
            lines.append(f"- {key} Spearman within {SPEARMAN_MARGIN} of gensim: ours − gensim = {gap:+.4f} — **{met}**")
        ratio = ours_row["words_per_second"] / gensim_row["words_per_second"]
        met = "met" if ratio >= SPEED_TARGET else "missed"
        lines.append(f"- training speed ≥ {SPEED_TARGET}× gensim with 2 workers: {ratio:.2f}× — **{met}**")
        lines += ["", "Nearest neighbours (first seed):", "", "| word | ours | gensim |", "|---|---|---|"]
        for word, found in result["neighbours"]["ours"].items():
            lines.append(f"| {word} | {', '.join(found)} | {', '.join(result['neighbours']['gensim'].get(word, []))} |")
        lines.append("")
    lines += ["![PCA of word groups, ours and gensim's](projection.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument("--cbow", action="store_true", help="also CBOW against gensim's CBOW (first seed only)")
    parser.add_argument("--runs-dir", default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--report-dir", default=str(Path(__file__).with_name("word2vec")))
    args = parser.parse_args(argv)
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="word2vec-bench-"))

    corpus = english_corpus("all")
    tokens = tokenized(corpus.texts)
    total_words = sum(map(len, tokens))
    results: dict[str, Any] = {
        "cpu": cpu_description(),
        "command": "python bench/word2vec.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "corpus": {
            "texts": len(corpus),
            "words": total_words,
            "sources": [vars(s) for s in corpus.stats()],
        },
        "architectures": {},
    }
    plans = [("skipgram", args.seeds)] + ([("cbow", args.seeds[:1])] if args.cbow else [])
    for preset, seeds in plans:
        result = measure_architecture(Word2VecConfig.load(preset), seeds, tokens, total_words, runs_dir)
        results["architectures"][preset] = result
    skipgram_vectors = results["architectures"]["skipgram"].pop("_vectors")
    for result in results["architectures"].values():
        result.pop("_vectors", None)
    projection_plot(
        {"ours (skip-gram)": skipgram_vectors["ours"], "gensim (skip-gram)": skipgram_vectors["gensim"]},
        report_dir / "projection.png",
    )
    (report_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (report_dir / "report.md").write_text(report(results, results["command"]))
    print((report_dir / "report.md").read_text())


if __name__ == "__main__":
    main()
