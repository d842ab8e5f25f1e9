"""`kerasllm compare`: the plain LSTM, the LSTM with attention and the Transformer, trained and measured alike.

Each model is a translate run (`apps.translate`) in `<runs_dir>/<corpus>-<preset>`, so a comparison
reuses the runs of `kerasllm translate train` made with the same presets, and an interrupted comparison
continues: finished runs are not retrained, a killed one resumes from its backup, and measurements
newer than a run's best checkpoint are kept. Every run gets the same vocabularies (copied from the
first run that has them), the same pipeline and the same training-time budget; training and
measuring happen in child processes, one per model (see `apps.compare.probe`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import sacrebleu

from kerasllm import data

LABELS = {"lstm": "LSTM", "lstm_attention": "LSTM + attention", "transformer": "Transformer"}
FULL_PRESETS = {"lstm": "lstm", "lstm_attention": "lstm_attention", "transformer": "transformer"}
QUICK_PRESETS = {"lstm": "tiny_lstm", "lstm_attention": "tiny_lstm_attention", "transformer": "tiny"}
# Source-length buckets in words (whitespace-separated); Multi30K English sentences have a median of ~12.
LENGTH_BUCKETS = ((1, 8), (9, 12), (13, 16), (17, 20), (21, None))
VOCABULARY_FILES = ("source.vocab", "target.vocab")


@dataclasses.dataclass
class Comparison:
    """What to compare and where.

    Args:
        corpus, pair: a registered parallel corpus and language pair.
        test_split: the split scored for the report (validation is always `val`).
        minutes: the training-time budget of every model.
        runs_dir: where the runs live (`<runs_dir>/<corpus>-<preset>`).
        report_dir: where report.md, results.json and the plots go.
        presets: translate presets, keyed by "lstm", "lstm_attention", "transformer".
        data_dir: corpus root (default `$KERASLLM_DATA` or ../shared/data).
        command: the command line, printed at the top of the report.
    """

    corpus: str
    pair: str
    test_split: str
    minutes: float
    runs_dir: Path
    report_dir: Path
    presets: dict[str, str]
    data_dir: str | None = None
    command: str = ""

    def run_dir(self, name: str) -> Path:
        return Path(self.runs_dir) / f"{self.corpus}-{self.presets[name]}"


def _child(arguments: list[str], log: Path) -> None:
    """Run `python -m ...` in a child process; its stderr (TensorFlow's noise) goes to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as stderr:
        completed = subprocess.run([sys.executable, "-m", *arguments], stderr=stderr, check=False)
    if completed.returncode:
        raise ChildProcessError(f"`python -m {' '.join(arguments)}` failed (exit {completed.returncode}); see {log}")


def _share_vocabularies(run_dirs: list[Path]) -> None:
    """Copy the vocabularies of the first run that has them into the runs that have none yet."""
    reference = next((d for d in run_dirs if all((d / f).exists() for f in VOCABULARY_FILES)), None)
    if reference is None:
        return
    for run_dir in run_dirs:
        for name in VOCABULARY_FILES:
            if not (run_dir / name).exists():
                run_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(reference / name, run_dir / name)


def _vocabulary_fingerprint(run_dirs: dict[str, Path]) -> dict[str, Any]:
    """sha256 and size of the one pair of vocabularies all runs share; a mismatch is an error."""
    digests = {
        name: tuple(hashlib.sha256((d / f).read_bytes()).hexdigest() for f in VOCABULARY_FILES)
        for name, d in run_dirs.items()
    }
    if len(set(digests.values())) > 1:
        raise ValueError(
            f"the runs in {', '.join(str(d) for d in run_dirs.values())} were trained with different "
            "vocabularies; a comparison needs one tokenizer: give a fresh --runs-dir"
        )
    source, target = next(iter(digests.values()))
    any_run = next(iter(run_dirs.values()))
    sizes = [len((any_run / f).read_text(encoding="utf-8").splitlines()) for f in VOCABULARY_FILES]
    return {"source_sha256": source, "target_sha256": target, "source_size": sizes[0], "target_size": sizes[1]}


def train_all(comparison: Comparison) -> dict[str, Path]:
    """Train (or resume, or skip when finished) every model; returns their run directories."""
    run_dirs = {name: comparison.run_dir(name) for name in comparison.presets}
    for name, run_dir in run_dirs.items():
        _share_vocabularies(list(run_dirs.values()))
        if (run_dir / "finished.json").exists():
            print(f"[{LABELS[name]}] finished run in {run_dir}: not retrained")
            continue
        print(
            f"[{LABELS[name]}] training preset {comparison.presets[name]!r} for up to {comparison.minutes:g} "
            f"minutes -> {run_dir} (resumes if interrupted; TensorFlow's log: {run_dir / 'stderr.log'})",
            flush=True,
        )
        arguments = [
            "apps.cli",
            "translate",
            "train",
            "--config",
            comparison.presets[name],
            "--out",
            str(run_dir),
            "--corpus",
            comparison.corpus,
            "--pair",
            comparison.pair,
            "--minutes",
            str(comparison.minutes),
        ]
        if comparison.data_dir:
            arguments += ["--data-dir", comparison.data_dir]
        _child(arguments, run_dir / "stderr.log")
    return run_dirs


def measure_all(comparison: Comparison, run_dirs: dict[str, Path]) -> None:
    """Evaluate and time every run, each in a fresh process (skipped where results are up to date)."""
    for name, run_dir in run_dirs.items():
        print(
            f"[{LABELS[name]}] measuring: beam-search BLEU on val and {comparison.test_split}, training and "
            "decoding speed, memory",
            flush=True,
        )
        arguments = ["apps.compare.probe", str(run_dir), "--test-split", comparison.test_split]
        if comparison.data_dir:
            arguments += ["--data-dir", comparison.data_dir]
        _child(arguments, run_dir / "stderr.log")


def _history(run_dir: Path) -> list[dict[str, float]]:
    import csv

    with (run_dir / "history.csv").open(newline="") as handle:
        return [
            {key: float(value) for key, value in row.items() if value not in ("", None)}
            for row in csv.DictReader(handle)
        ]


def _bucket_name(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


def bucket_of(source: str) -> str:
    """The `LENGTH_BUCKETS` name of a source sentence (an empty one counts as short)."""
    words = len(source.split())
    low, high = next(bucket for bucket in LENGTH_BUCKETS if bucket[1] is None or words <= bucket[1])
    return _bucket_name(low, high)


def bleu_by_length(sources: list[str], references: list[str], hypotheses: list[str]) -> dict[str, dict]:
    """Corpus BLEU of each source-length bucket (sacreBLEU defaults), with its segment count."""
    buckets: dict[str, tuple[list[str], list[str]]] = {_bucket_name(*bucket): ([], []) for bucket in LENGTH_BUCKETS}
    for source, reference, hypothesis in zip(sources, references, hypotheses):
        bucket_hypotheses, bucket_references = buckets[bucket_of(source)]
        bucket_hypotheses.append(hypothesis)
        bucket_references.append(reference)
    return {
        bucket: {"segments": len(hyps), "bleu": sacrebleu.corpus_bleu(hyps, [refs]).score if hyps else None}
        for bucket, (hyps, refs) in buckets.items()
    }


def _examples(sources: list[str], references: list[str], hypotheses: dict[str, list[str]]) -> list[dict]:
    """Four test sentences, from short to the longest, with every model's translation."""
    by_length = sorted(range(len(sources)), key=lambda i: (len(sources[i].split()), i))
    picks = sorted(
        {by_length[int(q * (len(by_length) - 1))] for q in (0.25, 0.5, 0.9, 1.0)}, key=lambda i: len(sources[i].split())
    )
    return [
        {
            "source": sources[i],
            "reference": references[i],
            "translations": {name: outputs[i] for name, outputs in hypotheses.items()},
        }
        for i in picks
    ]


def collect_results(comparison: Comparison, run_dirs: dict[str, Path]) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-able values."""
    test = data.load(comparison.corpus, split=comparison.test_split, pair=comparison.pair, data_dir=comparison.data_dir)
    models, hypotheses, decodings = {}, {}, {}
    for name, run_dir in run_dirs.items():
        config = json.loads((run_dir / "config.json").read_text())
        decodings[name] = config["decoding"]
        probe = json.loads((run_dir / "compare_probe.json").read_text())
        evaluations = {
            split: json.loads((run_dir / f"eval_{split}.json").read_text()) for split in ("val", comparison.test_split)
        }
        history = _history(run_dir)
        best = min(history, key=lambda row: row["val_loss"])
        training_seconds = history[-1]["elapsed_seconds"]
        finished = json.loads((run_dir / "finished.json").read_text())
        hypotheses[name] = evaluations[comparison.test_split]["hypotheses"]
        models[name] = {
            "label": LABELS[name],
            "preset": comparison.presets[name],
            "run_dir": str(run_dir),
            "model_args": config["model_args"],
            "mixed_precision": config["mixed_precision"],
            "parameters": probe["parameters"],
            "epochs": len(history),
            "training_seconds": training_seconds,
            "best_epoch": int(best["epoch"]) + 1,
            "best_elapsed_seconds": best["elapsed_seconds"],
            "best_val_loss": best["val_loss"],
            "run_note": finished.get("note"),
            "val": {key: evaluations["val"][key] for key in ("bleu", "chrf")},
            "test": {
                key: evaluations[comparison.test_split][key]
                for key in ("bleu", "chrf", "bleu_signature", "chrf_signature", "segments", "seconds")
            },
            "training_tokens_per_second": probe["training_tokens_per_second"],
            # Over the whole budgeted run, validation passes included.
            "run_tokens_per_second": probe["epoch_target_tokens"] * len(history) / training_seconds,
            "decode_tokens_per_second": probe["decode_tokens_per_second"],
            "training_peak_rss_mb": probe["training_peak_rss_mb"],
            "bleu_by_source_length": bleu_by_length(test.sources, test.targets, hypotheses[name]),
            "history": [
                {key: row[key] for key in ("epoch", "elapsed_seconds", "loss", "val_loss") if key in row}
                for row in history
            ],
        }
    return {
        "command": comparison.command,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "corpus": comparison.corpus,
        "pair": comparison.pair,
        "test_split": comparison.test_split,
        "budget_minutes": comparison.minutes,
        "vocabulary": _vocabulary_fingerprint(run_dirs),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "tensorflow": version("tensorflow"),
            "keras": version("keras"),
        },
        "decoding": next(iter(decodings.values())),
        "models": models,
        "examples": _examples(test.sources, test.targets, hypotheses),
    }


def run_comparison(comparison: Comparison) -> dict[str, Any]:
    """Train, measure and report; returns the results (also written to `report_dir/results.json`)."""
    from apps.compare.report import write_report

    run_dirs = train_all(comparison)
    measure_all(comparison, run_dirs)
    results = collect_results(comparison, run_dirs)
    write_report(results, comparison.report_dir)
    print(f"report: {Path(comparison.report_dir) / 'report.md'}")
    return results
