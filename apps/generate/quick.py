"""`kerasllm generate --quick`: the generate app end to end in a few minutes on the embedded Tatoeba English side.

Trains a tiny character GPT with `model.fit` on packed blocks (resumed or reused when its run directory already
holds it), scores the whole validation split, samples with each strategy, exports it as a TF Serving SavedModel
with the sampling loop inside, verifies it in a fresh process and samples through it. Needs no ../shared.
"""

from __future__ import annotations

import time
from pathlib import Path

from apps.generate import app
from apps.generate.cli import format_scores
from apps.generate.config import GenerateConfig
from kerasllm.export import format_report, verify_export

CORPUS = "tatoeba_en"
PRESET = "tiny_gpt"
STRATEGIES = {
    "greedy": {"greedy": True},
    "temperature 0.8": {"temperature": 0.8, "seed": 1},
    "top-k 10": {"top_k": 10, "seed": 1},
    "top-p 0.9": {"top_p": 0.9, "seed": 1},
}


def main(run_dir: str | Path = "runs/generate-quick", base_path: str | Path = "saved_models/generate") -> None:
    started = time.perf_counter()
    print(f"1/4 train {PRESET} on the embedded Tatoeba English sentences -> {run_dir}")
    app.train(GenerateConfig.load(PRESET), run_dir, corpus=CORPUS, verbose=2)
    result = app.evaluate(run_dir, split="val")
    print(f"    {format_scores(result)}")

    print("2/4 sample (prompt 'The ', 40 new characters):")
    generator = app.Generator(app.load_run(run_dir))
    for name, options in STRATEGIES.items():
        text = generator(["The "], max_new_tokens=40, **options)[0]["text"]
        print(f"    {name:16} {'The ' + text!r}")

    version_dir = app.export(run_dir, base_path)
    print(f"3/4 export: {version_dir}")
    report = verify_export(version_dir)
    print(format_report(report))
    if not report["ok"]:
        raise SystemExit("the exported SavedModel failed verification")

    import tensorflow as tf

    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    prompts = ["The ", "", "Tom "]
    outputs = serve(
        prompt=tf.constant(prompts),
        max_new_tokens=tf.constant([40] * 3),
        temperature=tf.constant([0.8] * 3),
        top_k=tf.constant([0] * 3),
        top_p=tf.constant([0.9] * 3),
        seed=tf.constant([1] * 3),
    )
    print("4/4 sample through the SavedModel (temperature 0.8, top-p 0.9, seed 1):")
    for prompt, text in zip(prompts, outputs["text"].numpy()):
        print(f"    {prompt!r:8} -> {prompt + text.decode('utf-8')!r}")
    print(f"done in {time.perf_counter() - started:.0f} s. Serve it: see saved_models/README.md")
