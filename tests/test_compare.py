"""`kerasllm compare --quick`: three tiny models on the embedded sample, the report files and their fields."""

from __future__ import annotations

import json

import pytest

from apps.cli import main
from apps.compare.runner import LENGTH_BUCKETS, bleu_by_length, bucket_of

MODEL_FIELDS = {
    "label",
    "preset",
    "parameters",
    "epochs",
    "training_seconds",
    "best_epoch",
    "best_elapsed_seconds",
    "best_val_loss",
    "val",
    "test",
    "training_tokens_per_second",
    "run_tokens_per_second",
    "decode_tokens_per_second",
    "training_peak_rss_mb",
    "bleu_by_source_length",
    "history",
}


def test_length_buckets_cover_every_length():
    assert bucket_of("") == bucket_of("one") == "1-8"
    assert bucket_of("w " * 12) == "9-12" and bucket_of("w " * 13) == "13-16" and bucket_of("w " * 40) == "21+"
    sentence = "le chat est sur la table ."
    scores = bleu_by_length(["a b c", "w " * 30], [sentence, "x y z"], [sentence, "q"])
    assert len(scores) == len(LENGTH_BUCKETS)
    assert scores["1-8"] == {"segments": 1, "bleu": pytest.approx(100.0)}
    assert scores["9-12"] == {"segments": 0, "bleu": None}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    assert (
        main(
            [
                "compare",
                "--quick",
                "--minutes",
                "0.25",
                "--runs-dir",
                str(root / "runs"),
                "--report",
                str(root / "report"),
            ]
        )
        == 0
    )
    return root


def test_quick_comparison_writes_the_report(quick_report):
    report = quick_report / "report"
    for name in ("report.md", "results.json", "training.png", "costs.png", "bleu_by_length.png"):
        assert (report / name).stat().st_size > 0, name
    results = json.loads((report / "results.json").read_text())
    assert results["command"].startswith("kerasllm compare --quick")
    assert results["corpus"] == "sample" and results["test_split"] == "test" and results["budget_minutes"] == 0.25
    assert set(results["models"]) == {"lstm", "lstm_attention", "transformer"}
    for name, model in results["models"].items():
        assert MODEL_FIELDS <= set(model), name
        started = [row["elapsed_seconds"] for row in model["history"][:-1]]
        assert all(seconds < 0.25 * 60 for seconds in started), "no epoch may start after the budget is spent"
        assert 0 <= model["test"]["bleu"] <= 100 and model["test"]["bleu_signature"].startswith("nrefs:1")
        assert model["training_tokens_per_second"] > 0 and model["training_peak_rss_mb"] > 0
        assert set(model["decode_tokens_per_second"]) == {"batch_1", "batch_32"}
        assert sum(b["segments"] for b in model["bleu_by_source_length"].values()) == model["test"]["segments"]
    params = {name: model["parameters"] for name, model in results["models"].items()}
    assert params["lstm_attention"] > params["lstm"], "attention adds parameters"
    assert len(results["examples"]) >= 3 and all(set(e["translations"]) == set(params) for e in results["examples"])
    markdown = (report / "report.md").read_text()
    assert markdown.splitlines()[3] == results["command"], "the command heads the report"
    assert "## Where each model wins and where it loses" in markdown and "wins" in markdown


def test_rerun_reuses_finished_runs(quick_report, capsys):
    runs = quick_report / "runs"
    histories = {path: path.read_text() for path in runs.glob("*/history.csv")}
    assert len(histories) == 3
    vocabularies = {path.read_bytes() for path in runs.glob("*/target.vocab")}
    assert len(vocabularies) == 1, "all three models must share one tokenizer"
    assert (
        main(
            [
                "compare",
                "--quick",
                "--minutes",
                "0.5",
                "--runs-dir",
                str(runs),
                "--report",
                str(quick_report / "report2"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.count("not retrained") == 3
    assert {path: path.read_text() for path in runs.glob("*/history.csv")} == histories
