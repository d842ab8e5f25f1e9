"""`kerasllm demo` / `make demo`: the whole product in a few minutes on the embedded sample.

Trains a small Transformer English→French with `model.fit` (resuming if `runs/demo` already holds the
run), scores it with sacreBLEU, exports a TF Serving SavedModel, verifies it in a fresh process and
translates a few sentences through it. Needs no ../shared data.
"""

from __future__ import annotations

import time
from pathlib import Path

from apps.translate import app
from apps.translate.config import TranslateConfig
from kerasllm.export import format_report, verify_export

SENTENCES = ["I am hungry.", "Where is the station?", "We like the cat.", "He is my brother."]


def main(run_dir: str | Path = "runs/demo", base_path: str | Path = "saved_models/translate") -> None:
    started = time.perf_counter()
    config = TranslateConfig.load("tiny")
    print(f"1/4 train: a {config.model} ({config.model_args}) on the embedded Tatoeba en-fr sample -> {run_dir}")
    app.train(config, run_dir, corpus="sample", pair="en-fr", verbose=2)

    result = app.evaluate(run_dir, split="test")
    print(
        f"2/4 evaluate: sample test split, {result['segments']} segments: BLEU {result['bleu']:.1f}, "
        f"chrF {result['chrf']:.1f}\n    {result['bleu_signature']}"
    )

    version_dir = app.export(run_dir, base_path)
    print(f"3/4 export: {version_dir}")
    report = verify_export(version_dir)
    print(format_report(report))
    if not report["ok"]:
        raise SystemExit("the exported SavedModel failed verification")

    import tensorflow as tf

    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    outputs = serve(text=tf.constant(SENTENCES))
    print("4/4 translate through the SavedModel:")
    for source, target, score in zip(SENTENCES, outputs["translations"].numpy(), outputs["scores"].numpy()):
        print(f"    {source!r:28} -> {target.decode('utf-8')!r}  (score {score:.2f})")
    print(f"done in {time.perf_counter() - started:.0f} s. Serve it: see saved_models/README.md")
