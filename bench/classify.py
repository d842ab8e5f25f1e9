"""The classify app's comparison report: every preset over 3 seeds and the TF-IDF baseline, per corpus.

    python bench/classify.py                       # sst2, ag_news, sms_spam; bilstm, gru, simple_rnn, transformer
    python bench/classify.py --corpora sms_spam --presets bilstm --seeds 0

For each corpus: the in-house TF-IDF (word 1-2-grams) + logistic regression anchor, then each preset trained with
`model.fit` once per seed (runs in RUNS_DIR/<corpus>-<preset>-s<seed>, resumed or reused when present), scored on
the test split through the serving graph; seed 0 of each preset is exported and timed at batch 1 through its
SavedModel signature. Writes REPORT_DIR/report.md (the command at the top), results.json and plots.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from apps.classify import app
from apps.classify.baseline import corpus_baseline
from apps.classify.config import ClassifyConfig
from apps.classify.datasets import CAVEATS, CORPORA, load_split
from kerasllm.metrics import mean_sd, plot_confusion_matrix

PRESETS = ("bilstm", "gru", "simple_rnn", "transformer")
# A 30-word sentence for the batch-1 serving latency (issue 17's target is p50 <= 10 ms for the Transformer).
SENTENCE = (
    "the film opens with a quiet scene in a small town and slowly builds into a moving story about a family "
    "that learns to forgive, carried by two wonderful performances"
)
METRICS = ("accuracy", "macro_f1", "mcc")
SCALES = {"accuracy": (100.0, 1), "macro_f1": (100.0, 1), "mcc": (1.0, 3)}  # accuracy and F1 in %, MCC as is


def _latency_ms(call: Any, repeats: int) -> dict[str, float]:
    for _ in range(20):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def _cpu_name() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)


def _history(run_dir: Path) -> list[dict[str, float]]:
    with (run_dir / "history.csv").open() as handle:
        return [{key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(handle)]


def _headline(scores: dict[str, Any], positive: str | None) -> dict[str, float]:
    values = {name: scores[name] for name in METRICS}
    if positive:  # the spam corpus: the spam class's F1 and the ham false-positive rate matter most
        values["positive_f1"] = scores["per_class"][positive]["f1"]
        values["false_positive_rate"] = scores["per_class"][positive]["false_positive_rate"]
    return values


def baseline_result(corpus: str, data_dir: str | None, repeats: int) -> dict[str, Any]:
    result = corpus_baseline(corpus, data_dir)
    scores = result["scores"]
    positive = "spam" if "spam" in scores["per_class"] else None
    latency = _latency_ms(lambda: result["classify"]([SENTENCE]), repeats)
    return {
        "model": "tfidf_logreg",
        "C": result["C"],
        "features": result["features"],
        "train_seconds": round(result["train_seconds"], 2),
        "scores": _headline(scores, positive),
        "latency_ms": latency,
        "confusion": scores["confusion"],
    }


def preset_result(
    corpus: str,
    preset: str,
    seeds: list[int],
    runs_dir: Path,
    data_dir: str | None,
    repeats: int,
    epochs: int | None = None,
) -> dict[str, Any]:
    train_size = len(load_split(corpus, "train", data_dir))
    per_seed = []
    for seed in seeds:
        config = ClassifyConfig.load(preset)
        config.seed = seed
        config.epochs = epochs or config.epochs
        run_dir = runs_dir / f"{corpus}-{preset}-s{seed}"
        app.train(config, run_dir, corpus=corpus, data_dir=data_dir, verbose=2)
        result = app.evaluate(run_dir, split="test", data_dir=data_dir)
        history = _history(run_dir)
        seconds = history[-1]["elapsed_seconds"]
        positive = "spam" if "spam" in result["per_class"] else None
        per_seed.append(
            {
                "seed": seed,
                "scores": _headline(result, positive),
                "epochs": len(history),
                "best_epoch": 1 + int(np.argmin([row["val_loss"] for row in history])),
                "train_seconds": round(seconds, 1),
                "examples_per_second": round(train_size * len(history) / seconds, 1),
                "val_accuracy": [row["val_accuracy"] for row in history],
                "windows": result["windows"],
                "confusion": result["confusion"],
            }
        )
    run = app.load_run(runs_dir / f"{corpus}-{preset}-s{seeds[0]}")
    version = app.export(run.run_dir, runs_dir / "exports" / f"{corpus}-{preset}")
    import tensorflow as tf

    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    sentence = tf.constant([SENTENCE])
    return {
        "model": preset,
        "parameters": int(run.model.count_params()),
        "seeds": per_seed,
        "summary": {key: mean_sd([seed["scores"][key] for seed in per_seed]) for key in per_seed[0]["scores"]},
        "train_seconds": mean_sd([seed["train_seconds"] for seed in per_seed]),
        "examples_per_second": mean_sd([seed["examples_per_second"] for seed in per_seed]),
        "latency_ms": _latency_ms(lambda: serve(text=sentence), repeats),
        "saved_model": str(version),
    }


def _cell(summary: dict[str, float | None], scale: float = 100.0, digits: int = 1) -> str:
    """`mean ± sd` scaled (a single measurement, sd None, prints alone)."""
    mean = f"{summary['mean'] * scale:.{digits}f}"
    return mean if summary["sd"] is None else f"{mean} ± {summary['sd'] * scale:.{digits}f}"


def write_plots(results: dict[str, Any], report_dir: Path) -> list[str]:
    from matplotlib.figure import Figure

    names = []
    for corpus, entry in results["corpora"].items():
        figure = Figure(figsize=(11, 4), layout="constrained")
        bars, curves = figure.subplots(1, 2)
        models = entry["models"]
        means = [model["summary"]["accuracy"]["mean"] * 100 for model in models]
        sds = [model["summary"]["accuracy"]["sd"] * 100 for model in models]
        bars.bar([model["model"] for model in models], means, yerr=sds, capsize=4, color="tab:blue")
        baseline = entry["baseline"]["scores"]["accuracy"] * 100
        bars.axhline(baseline, color="tab:red", linestyle="--", label=f"TF-IDF + LR {baseline:.1f}")
        bars.set_ylim(min(means + [baseline]) - 5, min(100, max(means + [baseline]) + 2))
        bars.set_ylabel("test accuracy (%), mean ± sd over seeds")
        bars.set_title(f"{corpus}: accuracy")
        bars.legend(loc="lower right")
        for model in models:
            curves.plot(
                range(1, len(model["seeds"][0]["val_accuracy"]) + 1),
                [value * 100 for value in model["seeds"][0]["val_accuracy"]],
                marker="o",
                label=model["model"],
            )
        curves.set_xlabel("epoch")
        curves.set_ylabel("val accuracy (%), seed 0")
        curves.set_title(f"{corpus}: training curves")
        curves.legend()
        name = f"{corpus}.png"
        figure.savefig(report_dir / name, dpi=110)
        best = max(models, key=lambda model: model["summary"]["accuracy"]["mean"])
        plot_confusion_matrix(
            best["seeds"][0]["confusion"],
            entry["label_names"],
            report_dir / f"{corpus}_confusion.png",
            title=f"{corpus} test, {best['model']} seed {best['seeds'][0]['seed']}",
        )
        names += [name, f"{corpus}_confusion.png"]
    return names


def _model(entry: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((model for model in entry["models"] if model["model"] == name), None)


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 17's targets, each with the measured value and whether it is met (means over seeds)."""
    checks = []

    def check(what: str, value: float, met: bool) -> None:
        checks.append({"target": what, "measured": round(value, 4), "met": bool(met)})

    corpora = results["corpora"]
    if "sst2" in corpora:
        entry = corpora["sst2"]
        for name, floor in (("bilstm", 0.840), ("transformer", 0.820)):
            if (model := _model(entry, name)) is not None:
                value = model["summary"]["accuracy"]["mean"]
                check(f"SST-2 dev accuracy, {name} >= {floor * 100:.1f}", value * 100, value >= floor)
        value = entry["baseline"]["scores"]["accuracy"]
        # A check of our data pipeline: keras-io's unigram bag-of-words gets 80.4; ours adds bigrams and picks C on val.
        check("SST-2 TF-IDF baseline at least the published bag-of-words 80.4 - 1.0", value * 100, value >= 0.794)
    if "ag_news" in corpora:
        entry = corpora["ag_news"]
        floor = entry["baseline"]["scores"]["accuracy"] - 0.01
        for model in entry["models"]:
            value = model["summary"]["accuracy"]["mean"]
            check(
                f"AG News (our split) {model['model']} >= TF-IDF - 1 = {floor * 100:.1f}", value * 100, value >= floor
            )
    if "sms_spam" in corpora:
        for model in corpora["sms_spam"]["models"]:
            summary = model["summary"]
            check(
                f"SMS spam {model['model']} accuracy >= 98.5",
                summary["accuracy"]["mean"] * 100,
                summary["accuracy"]["mean"] >= 0.985,
            )
            check(
                f"SMS spam {model['model']} spam F1 >= 0.93",
                summary["positive_f1"]["mean"],
                summary["positive_f1"]["mean"] >= 0.93,
            )
            check(
                f"SMS spam {model['model']} ham false-positive rate <= 0.5%",
                summary["false_positive_rate"]["mean"] * 100,
                summary["false_positive_rate"]["mean"] <= 0.005,
            )
    for corpus, entry in corpora.items():
        if (model := _model(entry, "transformer")) is not None:
            value = model["latency_ms"]["p50"]
            check(f"{corpus} Transformer SavedModel p50 at batch 1, 30 words <= 10 ms", value, value <= 10.0)
    return checks


def findings(results: dict[str, Any]) -> list[str]:
    """Where each model wins and loses, read off the measured numbers."""
    lines = []
    for corpus, entry in results["corpora"].items():
        baseline = entry["baseline"]["scores"]["accuracy"]
        models = sorted(entry["models"], key=lambda model: -model["summary"]["accuracy"]["mean"])
        best = models[0]
        beats = [m["model"] for m in models if m["summary"]["accuracy"]["mean"] > baseline]
        fastest = min(entry["models"], key=lambda model: model["latency_ms"]["p50"])
        cheapest = min(entry["models"], key=lambda model: model["train_seconds"]["mean"])
        gap = (best["summary"]["accuracy"]["mean"] - baseline) * 100
        lines.append(
            f"- **{corpus}**: best neural model {best['model']} at {_cell(best['summary']['accuracy'])}, "
            f"{gap:+.1f} points against TF-IDF + LR ({baseline * 100:.1f}); "
            + (f"beating the baseline: {', '.join(beats)}. " if beats else "no neural preset beats the baseline. ")
            + f"Fastest to serve: {fastest['model']} ({fastest['latency_ms']['p50']:.2f} ms p50; the baseline "
            f"{entry['baseline']['latency_ms']['p50']:.2f} ms in-process); cheapest to train: {cheapest['model']} "
            f"({cheapest['train_seconds']['mean']:.0f} s, the baseline {entry['baseline']['train_seconds']:.0f} s)."
        )
    return lines


def write_report(results: dict[str, Any], report_dir: Path) -> None:
    lines = [
        "# Classify: RNN and Transformer classifiers against a TF-IDF baseline",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        f"Machine: {results['machine']}. Every number below was printed by that command (results.json holds them "
        "all, per seed). Accuracy, F1 and MCC are on each corpus's test split (SST-2: GLUE dev), mean ± sd over "
        f"seeds {results['seeds']}; the checkpoint of each run is chosen on its val split. Serving latency: the "
        "exported SavedModel's `serving_default` (tokenizer and windows in the graph) called in-process at batch 1 "
        "on a 30-word sentence; the TF-IDF row times scikit-learn's `predict_proba` on the same sentence.",
        "",
    ]
    for corpus, entry in results["corpora"].items():
        spam = "positive_f1" in entry["baseline"]["scores"]
        header = "| model | parameters | accuracy (%) | macro F1 (%) | MCC |"
        header += " spam F1 | ham false-positive rate |" if spam else ""
        header += " train time (s) | train examples/s | latency p50 / p99 (ms) |"
        lines += [f"## {corpus}", "", CORPORA[corpus] + ".", ""]
        if corpus in CAVEATS:
            lines += [f"**{CAVEATS[corpus]}.**", ""]
        lines += [header, "|" + " --- |" * (header.count("|") - 1)]
        base = entry["baseline"]
        row = f"| TF-IDF 1-2-gram + LR (C={base['C']}) | {base['features']:,} features | "
        row += " | ".join(_cell({"mean": base["scores"][key], "sd": None}, *SCALES[key]) for key in METRICS) + " |"
        if spam:
            row += f" {base['scores']['positive_f1']:.3f} | {base['scores']['false_positive_rate'] * 100:.2f}% |"
        latency = base["latency_ms"]
        row += f" {base['train_seconds']:.1f} | – | {latency['p50']:.2f} / {latency['p99']:.2f} |"
        lines.append(row)
        for model in entry["models"]:
            summary = model["summary"]
            row = f"| {model['model']} | {model['parameters']:,} | "
            row += " | ".join(_cell(summary[key], *SCALES[key]) for key in METRICS) + " |"
            if spam:
                row += f" {_cell(summary['positive_f1'], 1, 3)} | {_cell(summary['false_positive_rate'], 100, 2)}% |"
            row += (
                f" {model['train_seconds']['mean']:.0f} | {model['examples_per_second']['mean']:,.0f} | "
                f"{model['latency_ms']['p50']:.2f} / {model['latency_ms']['p99']:.2f} |"
            )
            lines.append(row)
        lines += ["", f"![{corpus}]({corpus}.png)", "", f"![{corpus} confusion matrix]({corpus}_confusion.png)", ""]
    lines += ["## Where each wins and loses", "", *findings(results), "", "## Targets (issue 17)", ""]
    lines += ["| target | measured | met |", "| --- | --- | --- |"]
    lines += [
        f"| {check['target']} | {check['measured']} | {'yes' if check['met'] else '**no**'} |"
        for check in results["targets"]
    ]
    # The reading of the numbers (why a target is missed) is written by hand beside the report and kept on reruns.
    analysis = report_dir / "analysis.md"
    if analysis.exists():
        lines += ["", analysis.read_text().strip()]
    (report_dir / "report.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=["sst2", "ag_news", "sms_spam"], choices=list(CORPORA))
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="cap on epochs of newly trained runs (default: the preset's)")
    parser.add_argument(
        "--presets-for",
        nargs=2,
        action="append",
        default=[],
        metavar=("CORPUS", "PRESETS"),
        help="comma-separated presets for one corpus instead of --presets, e.g. sst2 bilstm,transformer",
    )
    parser.add_argument("--runs-dir", default="runs/classify", help="where the runs live (default runs/classify)")
    parser.add_argument("--report", default="bench/classify", help="report directory (default bench/classify)")
    parser.add_argument("--repeats", type=int, default=200, help="timed serving calls per model (default 200)")
    parser.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite report.md and plots from REPORT_DIR/results.json"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        results = json.loads((Path(args.report) / "results.json").read_text())
        results["targets"] = check_targets(results)
        write_plots(results, Path(args.report))
        write_report(results, Path(args.report))
        return
    import os
    import platform

    report_dir, runs_dir = Path(args.report), Path(args.runs_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "command": shlex.join(["python", "bench/classify.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": f"{os.cpu_count()} CPU cores, {_cpu_name() or platform.machine()}, no GPU",
        "seeds": args.seeds,
        "corpora": {},
    }
    for corpus in args.corpora:
        entry = {
            "label_names": list(load_split(corpus, "test", args.data_dir).label_names),
            "baseline": baseline_result(corpus, args.data_dir, args.repeats),
            "models": [],
        }
        print(f"{corpus} baseline: {json.dumps(entry['baseline']['scores'])}", flush=True)
        results["corpora"][corpus] = entry
        presets = dict(args.presets_for).get(corpus)
        for preset in presets.split(",") if presets else args.presets:
            entry["models"].append(
                preset_result(corpus, preset, args.seeds, runs_dir, args.data_dir, args.repeats, args.epochs)
            )
            summary = entry["models"][-1]["summary"]
            print(f"{corpus} {preset}: accuracy {_cell(summary['accuracy'])}", flush=True)
            # Written after every model, so a long run killed halfway still leaves what it measured.
            (report_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    results["targets"] = check_targets(results)
    (report_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_plots(results, report_dir)
    write_report(results, report_dir)
    print(f"wrote {report_dir / 'report.md'}")


if __name__ == "__main__":
    main()
