"""Our decoding against CTranslate2 on the same weights, both engines interleaved in one process.

    python bench/decode_vs_ctranslate2.py [--run RUN] [--repeats 5]

Without --run: a randomly initialised Transformer of the `transformer` preset's shape (3+3 layers, hidden_dim 256,
float32), vocabularies learned from Multi30K en-de train (the embedded sample when Multi30K is absent), 20-token
sources and 64 new tokens in both engines (the target embedding's [END] row is zeroed, so neither engine ever
chooses [END] and every row runs the whole length: the work is the same). With --run: a trained Transformer run on
its corpus's test sentences, as users call it (text in, text out, tokenization included), where both engines stop
at [END].

Rows: greedy and beam 4 at batch 1 and 32. Columns: our XLA-compiled loop, our graph loop (the SavedModel's loop:
the same search without XLA), CTranslate2 float32 and int8, each engine at `intra_threads=1` (its fastest setting
on 2 cores). `TF_ENABLE_ONEDNN_OPTS=0` in the environment measures our loops with TensorFlow's oneDNN kernels off
(the report then goes to random-onednn-off/ or run-onednn-off/). Each figure is the fastest of `--repeats`, the
engines taking turns within every repeat, so load on the machine hits all alike; ratios are against CTranslate2
float32 in the same run. Writes REPORT_DIR/<mode>/results.json and report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from decode_speed import cpu_description  # noqa: E402

from apps.translate import app  # noqa: E402
from apps.translate.config import TranslateConfig  # noqa: E402
from kerasllm import data  # noqa: E402
from kerasllm.data.tokenizer import END_ID, START_ID, SubwordTokenizer  # noqa: E402
from kerasllm.decoding import beam_search, compile_search, greedy_search  # noqa: E402
from kerasllm.export.ctranslate2 import export_ctranslate2, import_ctranslate2  # noqa: E402

SOURCE_TOKENS, NEW_TOKENS = 20, 64
SEARCHES = {"greedy": {}, "beam 4": {"beam_size": 4}}
BATCHES = (1, 32)


def random_setting(work: Path) -> dict[str, Any]:
    """The preset's model with random weights, tokenizers from Multi30K (or the sample), forced-length inputs."""
    config = TranslateConfig.load("transformer")
    try:
        pairs = data.load("multi30k", split="train", pair="en-de")
        corpus = "multi30k en-de train"
    except FileNotFoundError:
        pairs = data.load("sample", split="train", pair="en-fr")
        corpus = "the embedded sample (en-fr)"
    special = app.APP.special_tokens("source")
    source = SubwordTokenizer.train(pairs.sources, config.vocabulary_size, special)
    target = SubwordTokenizer.train(pairs.targets, config.vocabulary_size, special)
    config.mixed_precision = None
    model = app.APP.build_model(config, {"source": source.vocabulary_size, "target": target.vocabulary_size})
    embedding = model.decoder.token_embedding.embeddings
    embedding.assign(tf.tensor_scatter_nd_update(embedding, [[END_ID]], tf.zeros([1, embedding.shape[1]])))
    ct2_dirs = {
        name: export_ctranslate2(model, source, target, work / name, quantization=name) for name in ("float32", "int8")
    }
    rng = np.random.default_rng(0)
    ids = rng.integers(len(special) + 4, source.vocabulary_size, size=(max(BATCHES), SOURCE_TOKENS)).astype("int32")
    return {
        "what": f"random weights, `transformer` preset shape, vocabularies from {corpus} "
        f"({source.vocabulary_size:,} / {target.vocabulary_size:,} pieces), {SOURCE_TOKENS}-token sources, "
        f"{NEW_TOKENS} new tokens forced",
        "model": model,
        "source": source,
        "target": target,
        "ct2_dirs": ct2_dirs,
        "ids": ids,
    }


def engines_on_ids(setting: dict[str, Any], search: str, batch: int) -> dict[str, Callable[[], int]]:
    """Each engine as a call that decodes the batch and returns the tokens it produced."""
    ctranslate2 = import_ctranslate2()
    ids = setting["ids"][:batch]
    budget = {"max_length": NEW_TOKENS + 2, "length_ratio": 0.0, "length_offset": NEW_TOKENS + 1}
    function = greedy_search if search == "greedy" else beam_search
    options = {**SEARCHES[search], **budget, "start_id": START_ID, "end_id": END_ID}
    ours = {
        name: compile_search(function, setting["model"], jit_compile=jit, **options)
        for name, jit in (("ours XLA", True), ("ours graph", False))
    }
    vocabulary = setting["source"].vocabulary
    tokens = [[vocabulary[i] for i in row] for row in ids]
    translators = {
        name: ctranslate2.Translator(str(path), device="cpu", intra_threads=1)
        for name, path in setting["ct2_dirs"].items()
    }

    def run_ours(call: Callable) -> int:
        out = call(tf.constant(ids))["tokens"].numpy()
        out = out[:, 0] if out.ndim == 3 else out
        return int(np.sum((out != 0) & (out != END_ID) & (out != START_ID)))

    def run_ct2(translator: Any) -> int:
        results = translator.translate_batch(
            tokens,
            max_decoding_length=NEW_TOKENS,
            min_decoding_length=0,
            beam_size=SEARCHES[search].get("beam_size", 1),
        )
        return sum(len(result.hypotheses[0]) for result in results)

    calls = {name: (lambda call=call: run_ours(call)) for name, call in ours.items()}
    calls.update({f"CTranslate2 {name}": (lambda t=t: run_ct2(t)) for name, t in translators.items()})
    return calls


def engines_on_run(
    run_dir: Path, work: Path, sentences: list[str], search: str, batch: int
) -> dict[str, Callable[[], int]]:
    """Each engine translating the sentences text to text (both stop at END); returns the words produced."""
    run = app.load_run(run_dir)
    decoding = {**{k: v for k, v in run.config.decoding.items() if k not in ("beam_size", "alpha")}, "search": "greedy"}
    if search != "greedy":
        decoding = {**run.config.decoding, "search": "beam", **SEARCHES[search]}
    ct2_dirs = {
        name: app.export_ctranslate2(run_dir, work / f"{search}-{batch}-{name}", name, decoding=decoding)
        for name in ("float32", "int8")
    }
    ours = {
        "ours XLA": app.Translator.from_run(run, decoding, jit_compile=True),
        "ours graph": app.Translator.from_run(run, decoding, jit_compile=False),
    }
    theirs = {f"CTranslate2 {name}": app.CTranslate2Translator.from_directory(path) for name, path in ct2_dirs.items()}
    return {
        name: (lambda translate=translate: sum(len(t.split()) for t in translate(sentences, batch_size=batch)))
        for name, translate in {**ours, **theirs}.items()
    }


def measure(calls: dict[str, Callable[[], int]], repeats: int) -> dict[str, dict[str, float]]:
    produced = {name: call() for name, call in calls.items()}  # warm up: compile, load
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - started)
    reference = best["CTranslate2 float32"]
    return {
        name: {"seconds": round(best[name], 5), "produced": produced[name], "ratio": round(reference / best[name], 3)}
        for name in calls
    }


def report(results: dict[str, Any], command: str) -> str:
    unit = "tokens" if results["mode"] == "random" else "words"
    names = list(results["rows"][0]["engines"])
    lines = [
        "# Our decoding vs CTranslate2, same weights",
        "",
        f"    {command}",
        "",
        f"Machine: {results['cpu']}; TensorFlow's oneDNN kernels {'on' if results['onednn'] else 'off'}. "
        f"Model: {results['what']}. Figures: speed as a multiple of CTranslate2 float32 "
        f"(higher is faster), with {unit}/s; fastest of {results['repeats']} interleaved repeats.",
        "",
        "| search, batch | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for row in results["rows"]:
        cells = [f"{e['ratio']:.2f}× ({e['produced'] / e['seconds']:,.0f} {unit}/s)" for e in row["engines"].values()]
        lines.append(f"| {row['search']}, {row['batch']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a trained translate Transformer run (default: random weights, forced length)")
    parser.add_argument("--sentences", type=int, default=64, help="test sentences with --run (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the fastest counts (default 5)")
    parser.add_argument("--report-dir", default=str(Path(__file__).with_name("decode_vs_ctranslate2")))
    args = parser.parse_args(argv)
    # oneDNN is TensorFlow's CPU kernel library; TF_ENABLE_ONEDNN_OPTS=0 turns it off (a server setting too).
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    command = ("" if onednn else "TF_ENABLE_ONEDNN_OPTS=0 ") + "python bench/decode_vs_ctranslate2.py "
    command += shlex.join(argv if argv is not None else sys.argv[1:])
    rows = []
    with tempfile.TemporaryDirectory() as work:
        if args.run:
            run = app.load_run(args.run)
            corpus = data.load(run.info["corpus"], split="test", pair=run.info.get("pair"))
            what = f"the trained run {args.run} on {args.sentences} test sentences of {run.info['corpus']}"
            for search in SEARCHES:
                for batch in BATCHES:
                    sentences = corpus.sources[: args.sentences if batch > 1 else 8]
                    calls = engines_on_run(Path(args.run), Path(work), sentences, search, batch)
                    rows.append({"search": search, "batch": batch, "engines": measure(calls, args.repeats)})
                    print(rows[-1], flush=True)
        else:
            setting = random_setting(Path(work))
            what = setting["what"]
            for search in SEARCHES:
                for batch in BATCHES:
                    engines = measure(engines_on_ids(setting, search, batch), args.repeats)
                    rows.append({"search": search, "batch": batch, "engines": engines})
                    print(rows[-1], flush=True)
    results = {
        "cpu": cpu_description(),
        "mode": "run" if args.run else "random",
        "onednn": onednn,
        "what": what,
        "repeats": args.repeats,
        "rows": rows,
    }
    report_dir = Path(args.report_dir) / (("run" if args.run else "random") + ("" if onednn else "-onednn-off"))
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (report_dir / "report.md").write_text(report(results, command.strip()))
    print(report(results, command.strip()))


if __name__ == "__main__":
    main()
