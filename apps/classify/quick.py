"""`kerasllm classify --quick`: the classify app end to end in a few minutes on the embedded SMS spam sample.

Trains a tiny BiLSTM and a tiny Transformer with `model.fit` (each resumed or reused when its run directory
already holds it), scores both and the TF-IDF baseline on the same test split, exports the Transformer as a TF
Serving SavedModel, verifies it in a fresh process and classifies a few messages through it. Needs no ../shared.
"""

from __future__ import annotations

import time
from pathlib import Path

from apps.classify import app
from apps.classify.baseline import corpus_baseline
from apps.classify.config import ClassifyConfig
from kerasllm.export import format_report, verify_export

CORPUS = "sms_spam_sample"
PRESETS = ("tiny_bilstm", "tiny_transformer")
MESSAGES = [
    "Are we still on for lunch tomorrow?",
    "WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 to claim now",
    "",
]


def main(runs_dir: str | Path = "runs/classify-quick", base_path: str | Path = "saved_models/classify") -> None:
    started = time.perf_counter()
    runs_dir = Path(runs_dir)
    rows = []
    for step, preset in enumerate(PRESETS, start=1):
        run_dir = runs_dir / preset
        print(f"{step}/5 train {preset} on the embedded SMS spam sample -> {run_dir}")
        app.train(ClassifyConfig.load(preset), run_dir, corpus=CORPUS, verbose=2)
        result = app.evaluate(run_dir, split="test")
        rows.append((preset, result["accuracy"], result["per_class"]["spam"]["f1"], result["mcc"]))

    print("3/5 the TF-IDF + logistic regression baseline on the same splits")
    try:  # scikit-learn is a dev dependency: without it the comparison goes on without the baseline
        scores = corpus_baseline(CORPUS)["scores"]
    except ImportError as error:
        print(f"    skipped: {error}")
    else:
        rows.append(("tfidf_logreg", scores["accuracy"], scores["per_class"]["spam"]["f1"], scores["mcc"]))
    print(f"    {'model':18} {'accuracy':>9} {'spam F1':>8} {'MCC':>7}   (test split, {result['count']} texts)")
    for name, accuracy, spam_f1, mcc in rows:
        print(f"    {name:18} {accuracy:9.4f} {spam_f1:8.4f} {mcc:7.4f}")

    version_dir = app.export(runs_dir / PRESETS[-1], base_path)
    print(f"4/5 export: {version_dir}")
    report = verify_export(version_dir)
    print(format_report(report))
    if not report["ok"]:
        raise SystemExit("the exported SavedModel failed verification")

    import tensorflow as tf

    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    outputs = serve(text=tf.constant(MESSAGES))
    print("5/5 classify through the SavedModel:")
    for text, label, probabilities, windows in zip(
        MESSAGES, outputs["label"].numpy(), outputs["probabilities"].numpy(), outputs["windows"].numpy()
    ):
        note = ", no tokens: the training prior" if windows == 0 else ""
        print(f"    {text[:60]!r:64} -> {label.decode()} ({probabilities.max():.3f}, {windows} window(s){note})")
    print(f"done in {time.perf_counter() - started:.0f} s. Serve it: see saved_models/README.md")
