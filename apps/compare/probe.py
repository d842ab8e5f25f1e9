"""Measure one trained translate run in a fresh process, for `kerasllm compare`.

    python -m apps.compare.probe RUN_DIR --test-split test2016 [--data-dir DIR]

Writes `RUN_DIR/compare_probe.json` (speed and memory) and, through `apps.translate.app.evaluate`,
`RUN_DIR/eval_val.json` and `RUN_DIR/eval_<test split>.json` (beam search, sacreBLEU, every hypothesis),
each only when missing or older than the run's `best.keras`. A fresh process per model keeps the
models apart: peak RSS is only meaningful per process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

TRAIN_STEPS = 8
BATCH_1_SENTENCES = 32
BATCH_32_SENTENCES = 256


def is_fresh(path: Path, run_dir: Path) -> bool:
    """`path` exists and was written after the run's best checkpoint."""
    best = run_dir / "best.keras"
    return path.exists() and best.exists() and path.stat().st_mtime >= best.stat().st_mtime


def training_speed(model, train_set, steps: int = TRAIN_STEPS) -> dict[str, Any]:
    """Target tokens/s of `train_on_batch` on the run's first `steps` batches, and an epoch's target tokens.

    Each batch runs once untimed (tracing every bucket shape) and once timed; padding is not counted.
    """
    import numpy as np

    epoch_tokens, batches = 0, []
    for inputs, targets in train_set:
        real = int(np.count_nonzero(targets.numpy()))
        epoch_tokens += real
        if len(batches) < steps:
            batches.append((inputs, targets, real))
    for inputs, targets, _ in batches:
        model.train_on_batch(inputs, targets)
    started = time.perf_counter()
    for inputs, targets, _ in batches:
        model.train_on_batch(inputs, targets)
    seconds = time.perf_counter() - started
    return {
        "training_tokens_per_second": sum(real for *_, real in batches) / seconds,
        "training_probe_steps": len(batches),
        "epoch_target_tokens": epoch_tokens,
    }


def decoding_speed(translator, target_tokenizer, sources: list[str], batch_size: int) -> float:
    """Generated tokens/s (END included) of greedy decoding `sources` in batches of `batch_size`, after an untimed
    warm-up pass."""
    translator(sources, batch_size=batch_size)  # compiles every source-length bucket
    started = time.perf_counter()
    outputs = translator(sources, batch_size=batch_size)
    seconds = time.perf_counter() - started
    tokens = int(target_tokenizer.tokenize(outputs).row_lengths().numpy().sum()) + len(outputs)
    return tokens / seconds


def probe(run_dir: str | Path, *, test_split: str, data_dir: str | None = None) -> dict[str, Any]:
    """Speed, memory and evaluation of one run; see the module docstring."""
    from apps.translate import app
    from apps.translate.config import TranslateConfig
    from kerasllm import data, runner

    run_dir = Path(run_dir)
    output = run_dir / "compare_probe.json"
    config = TranslateConfig.load(run_dir / "config.json")
    info = runner.read_json(run_dir / "run.json", what="run.json")
    if not is_fresh(output, run_dir):
        model, train_set, _ = runner.prepare_training(app.APP, runner.Run(run_dir, config, info, {}), data_dir)
        result: dict[str, Any] = {"parameters": model.count_params(), **training_speed(model, train_set)}
        # Measured before the trained model is loaded: the peak of a process that has trained.
        result["training_peak_rss_mb"] = runner.peak_rss_mb()
        del model

        run = app.load_run(run_dir)
        sources = data.load(info["corpus"], split=test_split, pair=info["pair"], data_dir=data_dir).sources
        greedy = app.Translator.from_run(
            run, {"search": "greedy", "max_length": config.decoding.get("max_length", 128)}
        )
        target_tokenizer = run.tokenizers["target"]
        result["decode_tokens_per_second"] = {
            "batch_1": decoding_speed(greedy, target_tokenizer, sources[:BATCH_1_SENTENCES], 1),
            "batch_32": decoding_speed(greedy, target_tokenizer, sources[:BATCH_32_SENTENCES], 32),
        }
        output.write_text(json.dumps(result, indent=2) + "\n")
    # The report needs every hypothesis of the test split (length buckets, examples), only scores of val.
    for split, needs_hypotheses in (("val", False), (test_split, True)):
        evaluation = run_dir / f"eval_{split}.json"
        previous = json.loads(evaluation.read_text()) if is_fresh(evaluation, run_dir) else {}
        if previous.get("decoding") != config.decoding or (needs_hypotheses and "hypotheses" not in previous):
            app.evaluate(run_dir, split=split, data_dir=data_dir)
    return json.loads(output.read_text())


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="python -m apps.compare.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a trained translate run directory")
    parser.add_argument("--test-split", required=True, help="the split to score and to decode for speed")
    parser.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    args = parser.parse_args(argv)
    probe(args.run_dir, test_split=args.test_split, data_dir=args.data_dir)
    print(f"    measured: {Path(args.run_dir) / 'compare_probe.json'}, eval_val.json, eval_{args.test_split}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
