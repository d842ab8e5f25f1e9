"""The English corpus: sources and rules on the shared data, deduplication, the embedded sample, errors."""

from __future__ import annotations

import gzip
import re

import pytest
from conftest import DATA_DIR

from kerasllm.data import registry
from kerasllm.data.english import DEFAULT_SOURCES, SOURCES, english_corpus
from kerasllm.data.skipgrams import count_words

requires_shared_data = pytest.mark.skipif(
    not (DATA_DIR / "multi30k").is_dir(),
    reason=f"shared corpora not found at {DATA_DIR / 'multi30k'}: set KERASLLM_DATA to the shared data folder",
)
TRAIN_SOURCES = ["multi30k", "sst2", "sms_spam", "tiny_shakespeare", "tatoeba-fra-eng"]


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """$KERASLLM_DATA points to a missing folder, and ../shared/data from the working directory does not exist."""
    missing = tmp_path / "missing"
    monkeypatch.setenv(registry.ENV_VAR, str(missing))
    workdir = tmp_path / "work" / "main"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    return missing


@pytest.fixture(scope="module")
def rules():
    return {rule: english_corpus(rule, data_dir=DATA_DIR) for rule in ("all", "train")}


@pytest.fixture(scope="module")
def singles():
    return {name: set(english_corpus(sources=[name], data_dir=DATA_DIR).texts) for name in SOURCES}


def _read(corpus) -> dict[str, int]:
    """Texts read per source (kept + dropped as duplicates)."""
    return {s.source: s.texts + s.duplicates for s in corpus.stats()}


@requires_shared_data
def test_rule_all_reads_every_split_of_every_source_once(rules):
    corpus = rules["all"]
    assert list(dict.fromkeys(corpus.sources)) == list(DEFAULT_SOURCES)
    assert len(set(corpus.texts)) == len(corpus.texts)
    assert all(text == text.strip() and text for text in corpus.texts)
    read = _read(corpus)
    # Every Multi30K split (29,000 + 1,014 + 1,000 + 1,000 + 461 + 1,071), SST-2 train only, whole files otherwise.
    assert read["multi30k"] == 33_546
    assert read["sst2"] == len(registry.load("sst2", "train", data_dir=DATA_DIR)) == 67_349
    assert read["ag_news"] == 7_600
    assert read["sms_spam"] == 5_574
    assert read["squad_contexts"] == 2_067  # paragraphs, not one per question
    assert read["squad_questions"] == 10_570
    assert read["tatoeba-fra-eng"] == 18_065
    # The train/val cut falls inside a line: the whole file's non-blank lines, that line once.
    with gzip.open(DATA_DIR / "tiny_shakespeare" / "input.txt.gz", "rt", encoding="utf-8") as handle:
        assert read["tiny_shakespeare"] == sum(1 for line in handle if line.strip())
    stats = corpus.stats()
    assert all(s.texts > 0 and s.words > 0 for s in stats)
    assert sum(s.words for s in stats) == sum(count_words(corpus.texts).values())
    total = sum(s.words for s in stats)
    assert 2_100_000 < total < 2_500_000, corpus.format_stats()


@requires_shared_data
def test_rule_train_has_no_evaluation_text(rules, singles):
    corpus = rules["train"]
    assert list(dict.fromkeys(corpus.sources)) == TRAIN_SOURCES
    texts = set(corpus.texts)
    assert len(texts) == len(corpus.texts)
    sst2_train = {text.strip() for text in registry.load("sst2", "train", data_dir=DATA_DIR).texts}
    sst2_dev = {text.strip() for text in registry.load("sst2", "dev", data_dir=DATA_DIR).texts}
    sst2_test = {text.strip() for text in registry.load("sst2", "test", data_dir=DATA_DIR).texts}
    assert not texts & sst2_dev
    # Two SST-2 test sentences ("no . .", "what 's next ?") are also SST-2 train phrases: only those may appear.
    assert texts & sst2_test <= sst2_train
    assert not texts & (singles["ag_news"] | singles["squad_contexts"] | singles["squad_questions"])
    read = _read(corpus)
    for name in ("sms_spam", "tatoeba-fra-eng"):
        assert read[name] == len(registry.load(SOURCES[name].corpus, "train", SOURCES[name].pair, DATA_DIR))
    assert read["multi30k"] == 29_000
    assert 1_200_000 < sum(s.words for s in corpus.stats()) < 1_700_000, corpus.format_stats()


@requires_shared_data
def test_rule_all_leaves_out_sst2_dev_and_test(rules):
    texts = set(rules["all"].texts)
    sst2_train = {text.strip() for text in registry.load("sst2", "train", data_dir=DATA_DIR).texts}
    for split in ("dev", "test"):
        held_out = {text.strip() for text in registry.load("sst2", split, data_dir=DATA_DIR).texts}
        assert texts & held_out <= sst2_train


@requires_shared_data
def test_dedup_keeps_the_first_occurrence_in_source_order(rules, singles):
    corpus = rules["all"]
    names = list(DEFAULT_SOURCES)
    # Some texts do occur in two sources (e.g. Shakespeare and Tatoeba "What shall we do?").
    assert any(singles[a] & singles[b] for i, a in enumerate(names) for b in names[i + 1 :])
    for text, source in zip(corpus.texts, corpus.sources):
        assert source == next(name for name in names if text in singles[name])
    # The sample is a subset of Tatoeba, which comes first whatever order the sources are given in.
    both = english_corpus(sources=["sample", "tatoeba-fra-eng"], data_dir=DATA_DIR)
    assert set(both.sources) == {"tatoeba-fra-eng"}
    assert both.duplicates["sample"] == len(registry.load("sample", "all"))


def test_sample_needs_no_shared_data_and_dedups_within_a_source(no_data):
    corpus = english_corpus(sources=["sample"])
    raw = [text.strip() for text in registry.load("sample", "all").sources]
    assert corpus.texts == list(dict.fromkeys(raw))
    assert corpus.sources == ["sample"] * len(corpus.texts)
    assert corpus.duplicates == {"sample": len(raw) - len(set(raw))} and corpus.duplicates["sample"] > 0
    train = english_corpus("train", sources=["sample"])
    assert set(train.texts) < set(corpus.texts)
    (stats,) = corpus.stats()
    assert (stats.source, stats.texts, stats.duplicates) == ("sample", len(corpus.texts), corpus.duplicates["sample"])
    table = corpus.format_stats()
    assert "sample" in table and f"{stats.words:,}" in table.splitlines()[-1]


def test_missing_files_name_the_path_and_the_variable(no_data):
    with pytest.raises(FileNotFoundError) as error:
        english_corpus()
    assert str((no_data / "multi30k" / "train.en.gz").resolve()) in str(error.value)
    assert "$KERASLLM_DATA" in str(error.value)


@pytest.mark.parametrize(
    ("rule", "sources", "message"),
    [
        ("dev", None, "unknown rule 'dev'; rules: all, train"),
        ("all", ["sst2", "imdb"], "unknown English source 'imdb'; sources: multi30k, sst2, ag_news"),
        ("train", ["sample", "squad_questions"], "'squad_questions' has no training split"),
        ("all", [], "no English text in sources []"),
    ],
)
def test_bad_arguments_are_value_errors(no_data, rule, sources, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        english_corpus(rule, sources)
