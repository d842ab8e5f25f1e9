"""The corpus registry: counts on the real corpora, checksums, the embedded sample, missing-corpus errors."""

from __future__ import annotations

import shutil

import pytest
from conftest import DATA_DIR, requires_data

from kerasllm.data import registry
from kerasllm.data.corpus import UNLABELLED, LabelledCorpus, ParallelCorpus, QACorpus, TextCorpus


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No corpora anywhere: $KERASLLM_DATA is an empty folder and so is ../shared/data from here."""
    empty = tmp_path / "empty"
    empty.mkdir()
    workdir = tmp_path / "work" / "main"
    workdir.mkdir(parents=True)
    monkeypatch.setenv(registry.ENV_VAR, str(empty))
    monkeypatch.chdir(workdir)
    return empty


def test_sample_loads_without_any_data_dir(no_data):
    splits = {split: registry.load("sample", split) for split in ("train", "val", "test")}
    assert {split: len(corpus) for split, corpus in splits.items()} == {"train": 3600, "val": 200, "test": 200}
    assert (splits["train"].source_name, splits["train"].target_name) == ("en", "fr")
    pairs = [set(corpus) for corpus in splits.values()]
    assert len(pairs[0] | pairs[1] | pairs[2]) == sum(map(len, pairs))  # disjoint
    assert registry.verify("sample") == {registry.CORPORA["sample"].files[0].path: "ok"}


def test_sample_split_is_seeded_and_pair_order_only_swaps_sides(no_data):
    en_fr = registry.load("sample", "val", "en-fr")
    fr_en = registry.load("sample", "val", "fr-en")
    assert list(en_fr) == list(registry.load("sample", "val"))
    assert fr_en.sources == en_fr.targets and fr_en.targets == en_fr.sources


def test_sample_attribution_is_shipped():
    from importlib import resources

    attribution = (resources.files("kerasllm.data") / "sample" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "CC BY 2.0 FR" in attribution and "Tatoeba" in attribution
    assert registry.CORPORA["tatoeba-fra-eng"].files[0].sha256 in attribution


def test_missing_corpus_says_where_it_looked_and_how_to_get_it(no_data):
    with pytest.raises(FileNotFoundError) as error:
        registry.load("multi30k", "train", "en-de")
    message = str(error.value)
    assert str((no_data / "multi30k" / "train.en.gz").resolve()) in message
    assert "$KERASLLM_DATA" in message
    assert "https://github.com/multi30k/dataset/raw/master/data/task1/raw/train.en.gz" in message


def test_default_data_root_is_shared_data_next_to_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    root, origin = registry.data_root()
    assert root.resolve() == (tmp_path.parent / "shared" / "data").resolve()
    assert "not set" in origin
    assert registry.data_root("/somewhere")[0].as_posix() == "/somewhere"


def test_bad_names_splits_and_pairs_are_value_errors():
    with pytest.raises(ValueError, match="known corpora: .*multi30k"):
        registry.load("multi31k")
    with pytest.raises(ValueError, match="only the official test split"):
        registry.load("ag_news", "train")
    with pytest.raises(ValueError, match="only the dev split"):
        registry.load("squad_v1.1")
    with pytest.raises(ValueError, match="splits: train, val, test2016"):
        registry.load("multi30k", "test")
    with pytest.raises(ValueError, match="pairs: en-de"):
        registry.load("multi30k", "train", "en-es")
    with pytest.raises(ValueError, match="not a translation corpus"):
        registry.load("sst2", "train", "en-de")


def test_listing_without_data(no_data):
    listing = registry.format_listing()
    assert str(no_data) in listing
    table = listing.split("\n\n")[0].splitlines()[2:]
    lines = {line.split()[0]: line for line in table}
    assert set(lines) == set(registry.CORPORA)
    assert "embedded, sha256 ok" in lines["sample"]
    assert "missing" in lines["multi30k"] and "research only" in lines["multi30k"]
    assert "multi30k: https://github.com/multi30k/dataset/raw/master/data/task1/raw/<file> (18 files)" in listing


def test_every_entry_records_urls_and_checksums():
    for entry in registry.CORPORA.values():
        assert entry.files and entry.license and entry.split_names
        for data_file in entry.files:
            assert len(data_file.sha256) == 64 and data_file.url.startswith("https://")


@requires_data
@pytest.mark.full_data
@pytest.mark.parametrize("pair", ["en-de", "de-en", "en-fr", "fr-de"])
def test_multi30k_split_sizes(pair):
    expected = {
        "train": 29000,
        "val": 1014,
        "test2016": 1000,
        "test2017": 1000,
        "test2017_mscoco": 461,
        "test2018": 1071,
    }
    sizes = {split: len(registry.load("multi30k", split, pair, DATA_DIR)) for split in expected}
    assert sizes == expected
    corpus = registry.load("multi30k", "test_2016_flickr", pair, DATA_DIR)
    assert isinstance(corpus, ParallelCorpus) and (corpus.source_name, corpus.target_name) == tuple(pair.split("-"))


@requires_data
@pytest.mark.full_data
def test_multi30k_directions_are_mirrors():
    en_de = registry.load("multi30k", "val", "en-de", DATA_DIR)
    de_en = registry.load("multi30k", "val", "de-en", DATA_DIR)
    assert en_de.sources == de_en.targets and en_de.targets == de_en.sources
    assert en_de.sources[0].startswith("A group of men")


@requires_data
@pytest.mark.full_data
def test_tatoeba_seeded_split():
    splits = {split: registry.load("tatoeba-fra-eng", split, data_dir=DATA_DIR) for split in ("train", "val", "test")}
    assert {split: len(c) for split, c in splits.items()} == {"train": 16259, "val": 903, "test": 903}
    assert splits["train"].report.read == 18065
    again = registry.load("tatoeba-fra-eng", "test", data_dir=DATA_DIR)
    assert list(again) == list(splits["test"])


@requires_data
@pytest.mark.full_data
def test_classification_corpora():
    sst2 = {split: registry.load("sst2", split, data_dir=DATA_DIR) for split in ("train", "dev", "test")}
    assert {split: len(c) for split, c in sst2.items()} == {"train": 67349, "dev": 872, "test": 1821}
    assert isinstance(sst2["dev"], LabelledCorpus) and sst2["dev"].label_names == ["negative", "positive"]
    assert (sst2["train"].labels.count(1), sst2["train"].labels.count(0)) == (37569, 29780)
    assert set(sst2["test"].labels) == {UNLABELLED}

    ag_news = registry.load("ag_news", "test", data_dir=DATA_DIR)
    assert len(ag_news) == 7600 and ag_news.label_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert [ag_news.labels.count(i) for i in range(4)] == [1900] * 4

    sms = [registry.load("sms_spam", split, data_dir=DATA_DIR) for split in ("train", "val", "test")]
    assert sum(map(len, sms)) == 5574
    assert sum(c.labels.count(0) for c in sms) == 4827 and sum(c.labels.count(1) for c in sms) == 747


@requires_data
@pytest.mark.full_data
def test_squad_shakespeare_and_chatterbot():
    squad = registry.load("squad_v1.1", "dev", data_dir=DATA_DIR)
    assert isinstance(squad, QACorpus) and len(squad) == 10570
    assert len({record.context for record in squad}) == 2067
    assert all(r.context[s : s + len(a)] == a for r in squad.records[:500] for a, s in zip(r.answers, r.answer_starts))

    train = registry.load("tiny_shakespeare", "train", data_dir=DATA_DIR)
    val = registry.load("tiny_shakespeare", "val", data_dir=DATA_DIR)
    assert isinstance(train, TextCorpus) and len(train.text) + len(val.text) == 1_115_394
    assert len(train.text) == int(0.9 * 1_115_394) and train.text.startswith("First Citizen:")

    chat = [registry.load("chatterbot_corpus_en", split, data_dir=DATA_DIR) for split in ("train", "val", "test")]
    assert chat[0].report.read == 2393  # consecutive turn pairs of the 2,026 conversations
    assert sum(map(len, chat)) == chat[0].report.kept
    assert chat[0].sources[0] == "What is AI?"


@requires_data
@pytest.mark.full_data
def test_verify_checks_sha256(tmp_path):
    assert set(registry.verify("multi30k", DATA_DIR).values()) == {"ok"}
    assert set(registry.verify("squad_v1.1", DATA_DIR).values()) == {"ok"}
    copy = tmp_path / "tiny_shakespeare"
    copy.mkdir()
    shutil.copyfile(DATA_DIR / "tiny_shakespeare" / "input.txt.gz", copy / "input.txt.gz")
    assert registry.verify("tiny_shakespeare", tmp_path) == {"input.txt.gz": "ok"}
    with open(copy / "input.txt.gz", "ab") as handle:
        handle.write(b"tampered")
    assert registry.verify("tiny_shakespeare", tmp_path) == {"input.txt.gz": "sha256 mismatch"}
    assert set(registry.verify("sst2", tmp_path).values()) == {"missing"}
