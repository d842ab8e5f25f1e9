"""Corpus statistics, the `kerasllm data` commands and the demo."""

from __future__ import annotations

import pytest
from conftest import DATA_DIR, requires_data

import apps.cli as cli
from kerasllm.data import demo, registry
from kerasllm.data.stats import corpus_stats, format_stats


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(registry.ENV_VAR, str(empty))
    monkeypatch.chdir(tmp_path)
    return empty


def test_sample_stats(no_data):
    stats = corpus_stats("sample", vocab_size=1000)
    assert {split: s["records"] for split, s in stats["splits"].items()} == {"train": 3600, "val": 200, "test": 200}
    assert stats["vocabulary_split"] == "train" and set(stats["vocabulary_sizes"]) == {"en", "fr"}
    assert all(size <= 1000 for size in stats["vocabulary_sizes"].values())
    for split_stats in stats["splits"].values():
        for side in split_stats["sides"].values():
            assert 0 < side["p50"] <= side["p90"] <= side["p99"] <= side["max"]
            assert 0 <= side["unk_share"] < 0.01
    assert stats["splits"]["train"]["sides"]["en"]["unk_share"] == 0  # every training character is in the vocabulary
    text = format_stats(stats)
    assert "sample (translation en/fr (embedded)), pair en-fr" in text
    assert any(line.split()[:2] == ["train", "3600"] for line in text.splitlines())


def test_cli_errors_are_one_line(no_data, capsys):
    assert cli.main(["data", "stats", "multi30k", "--pair", "en-de"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kerasllm: error: corpus 'multi30k'") and "KERASLLM_DATA" in error and "\n" not in error
    assert cli.main(["data", "stats", "sst2", "--pair", "en-de", "--data-dir", str(DATA_DIR)]) == 2
    assert "not a translation corpus" in capsys.readouterr().err


def test_cli_list(no_data, capsys):
    assert cli.main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "multi30k" in out and "embedded, sha256 ok" in out


@requires_data
@pytest.mark.full_data
def test_multi30k_stats_counts(capsys):
    assert cli.main(["data", "stats", "multi30k", "--pair", "en-de", "--data-dir", str(DATA_DIR)]) == 0
    rows = {
        line.split()[0]: line.split()[1]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(("train", "val", "test"))
    }
    assert rows == {
        "train": "29000",
        "val": "1014",
        "test2016": "1000",
        "test2017": "1000",
        "test2017_mscoco": "461",
        "test2018": "1071",
    }


def test_demo_runs_without_shared_data(no_data, capsys):
    demo.main()
    out = capsys.readouterr().out
    assert "train 3600 / val 200 / test 200 pairs" in out
    assert "padding share" in out and "round trip exact" in out
