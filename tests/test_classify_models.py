"""The classify app's pieces that need no training: pooling, the two classifiers, stratified splits, the corpus
splits, the config checks and the labelled reader's error."""

from __future__ import annotations

import collections
import gzip
import itertools
import json

import keras
import numpy as np
import pytest
from conftest import DATA_DIR

from apps.classify.config import CONFIG_DIR, ClassifyConfig
from apps.classify.datasets import load_split
from kerasllm import data
from kerasllm.data.corpus import LabelledCorpus, ReadReport
from kerasllm.data.readers import read_labelled
from kerasllm.data.splits import stratified_split
from kerasllm.layers import SequencePooling
from kerasllm.tasks import RNNClassifier, TransformerClassifier

RNG = np.random.default_rng(0)
LENGTHS = [5, 2, 0, 1]  # a full row, a padded one, an all-padded one, a single token


# --- SequencePooling --------------------------------------------------------------------------------------------


def pooling_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Hidden states [4, 5, 3] whose padded positions hold huge values, so any leak of padding shows."""
    mask = np.arange(5)[None, :] < np.array(LENGTHS)[:, None]
    hidden = RNG.normal(size=(4, 5, 3)).astype("float32") - 2.0  # mostly negative: a max that took 0 would show
    return np.where(mask[..., None], hidden, 1e4).astype("float32"), mask


def reference_pooling(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    rows = []
    for states, real in zip(hidden, mask):
        kept = states[real]
        if not len(kept):
            rows.append(np.zeros(states.shape[-1], "float32"))
        elif mode == "mean":
            rows.append(kept.mean(axis=0))
        elif mode == "max":
            rows.append(kept.max(axis=0))
        else:
            rows.append(states[0])
    return np.stack(rows)


@pytest.mark.parametrize("mode", ["mean", "max", "first"])
def test_pooling_matches_numpy_and_skips_padding(mode):
    hidden, mask = pooling_inputs()
    pooled = np.asarray(SequencePooling(mode)(hidden, padding_mask=mask))
    np.testing.assert_allclose(pooled, reference_pooling(hidden, mask, mode), rtol=1e-6, atol=1e-6)
    assert pooled.shape == (4, 3)
    np.testing.assert_array_equal(pooled[2], np.zeros(3), err_msg=f"an all-padded row pools to zeros under {mode}")


@pytest.mark.parametrize("mode", ["mean", "max", "first"])
def test_pooling_a_batch_of_only_padding_gives_zeros(mode):
    hidden = RNG.normal(size=(2, 3, 4)).astype("float32")
    pooled = np.asarray(SequencePooling(mode)(hidden, padding_mask=np.zeros((2, 3), bool)))
    np.testing.assert_array_equal(pooled, np.zeros((2, 4)))


@pytest.mark.parametrize("mode", ["mean", "max", "first"])
def test_pooling_without_a_mask_reads_every_position(mode):
    hidden = RNG.normal(size=(2, 4, 3)).astype("float32")
    every = np.ones((2, 4), bool)
    np.testing.assert_allclose(
        np.asarray(SequencePooling(mode)(hidden)), reference_pooling(hidden, every, mode), rtol=1e-6, atol=1e-6
    )


def test_pooling_uses_the_keras_mask_when_no_padding_mask_is_given():
    token_ids = np.array([[3, 4, 0, 0], [5, 0, 0, 0]], "int32")
    embedding = keras.layers.Embedding(8, 2, mask_zero=True)
    hidden = np.asarray(embedding(token_ids))
    expected = reference_pooling(hidden, token_ids != 0, "mean")
    np.testing.assert_allclose(np.asarray(SequencePooling("mean")(embedding(token_ids))), expected, atol=1e-6)


def test_pooling_config_round_trip_and_bad_mode():
    layer = SequencePooling("max", name="pool")
    restored = SequencePooling.from_config(layer.get_config())
    assert (restored.mode, restored.name) == ("max", "pool")
    with pytest.raises(ValueError, match=r"mode must be one of \['mean', 'max', 'first'\], got 'median'"):
        SequencePooling("median")


# --- The classifiers --------------------------------------------------------------------------------------------

VOCABULARY, CLASSES, CLS = 50, 3, 7


def build(spec: tuple[str, dict], **kwargs) -> keras.Model:
    """A small classifier: `("transformer", {"pooling": ...})` or `("rnn", {"cell": ..., "pooling": ..., ...})`."""
    kind, options = spec
    keras.utils.set_random_seed(0)
    if kind == "transformer":
        cls_id = CLS if options["pooling"] == "cls" else None
        sizes = dict(num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, max_length=16)
        return TransformerClassifier(VOCABULARY, CLASSES, cls_id=cls_id, **sizes, **options, **kwargs)
    return RNNClassifier(VOCABULARY, CLASSES, units=8, embedding_dim=8, **options, **kwargs)


TRANSFORMERS = [pytest.param(("transformer", {"pooling": p}), id=f"transformer-{p}") for p in ("mean", "max", "cls")]
RNNS = [
    pytest.param(
        ("rnn", {"cell": cell, "pooling": pooling, "bidirectional": bidirectional}),
        id=f"{cell}-{pooling}-{'bi' if bidirectional else 'uni'}",
    )
    for cell, pooling, bidirectional in itertools.product(
        ("lstm", "gru", "simple_rnn"), ("max", "mean", "final"), (True, False)
    )
]
STACKED = pytest.param(
    ("rnn", {"cell": "lstm", "pooling": "final", "bidirectional": True, "num_layers": 2}), id="lstm-final-bi-2layers"
)
MODELS = [*TRANSFORMERS, *RNNS, STACKED]
ROUND_TRIPS = [TRANSFORMERS[2], STACKED] + [
    p for p in RNNS if p.id in ("lstm-max-bi", "gru-mean-uni", "simple_rnn-final-uni")
]

SHORT = [9, 10, 11]
LONG = [12, 13, 14, 15, 16, 17, 18]


@pytest.mark.parametrize("spec", MODELS)
def test_a_row_scores_the_same_alone_and_padded_in_a_batch(spec):
    model = build(spec)
    alone = np.asarray(model(np.array([SHORT], "int32")))
    batch = np.array([SHORT + [0] * (len(LONG) - len(SHORT)), LONG], "int32")
    together = np.asarray(model(batch))
    assert together.shape == (2, CLASSES)
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    assert not np.allclose(together[0], together[1], atol=1e-4), "different texts should not score the same"


@pytest.mark.parametrize("spec", MODELS)
def test_logits_are_float32_under_mixed_bfloat16(spec):
    model = build(spec, dtype="mixed_bfloat16")
    assert model.dtype_policy.name == "mixed_bfloat16" and model.backbone.compute_dtype == "bfloat16"
    logits = model(np.array([SHORT + [0, 0], LONG[:5]], "int32"))
    assert tuple(logits.shape) == (2, CLASSES)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert keras.config.dtype_policy().name == "float32", "a model must never change the global policy"


@pytest.mark.parametrize("spec", ROUND_TRIPS)
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_keras_round_trip_keeps_logits_and_dtype_policy(spec, dtype, tmp_path):
    model = build(spec, dtype=dtype)
    token_ids = np.array([SHORT + [0, 0, 0, 0], LONG], "int32")
    model.save(tmp_path / "classifier.keras")
    restored = keras.saving.load_model(tmp_path / "classifier.keras")
    assert type(restored) is type(model)
    assert restored.dtype_policy.name == dtype and restored.backbone.dtype_policy.name == dtype
    assert restored.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(restored(token_ids)), np.asarray(model(token_ids)), atol=1e-5)


def test_summary_names_the_pieces(capsys):
    build(TRANSFORMERS[2].values[0]).summary()
    build(STACKED.values[0]).summary()
    out = capsys.readouterr().out
    assert "backbone" in out and "logits" in out and "pooling" in out


def test_bad_pooling_and_cls_without_id_are_errors():
    with pytest.raises(ValueError, match="pooling='cls' needs cls_id"):
        TransformerClassifier(VOCABULARY, CLASSES, pooling="cls")
    with pytest.raises(ValueError, match="pooling must be 'mean', 'max' or 'cls', got 'final'"):
        TransformerClassifier(VOCABULARY, CLASSES, pooling="final")
    with pytest.raises(ValueError, match="pooling must be 'mean', 'max' or 'final', got 'cls'"):
        RNNClassifier(VOCABULARY, CLASSES, pooling="cls")


def test_cls_pooling_reads_the_cls_position():
    """With pooling="cls" the model scores the [CLS] position it prepends itself: the caller's ids carry none."""
    model = build(TRANSFORMERS[2].values[0])
    token_ids = np.array([SHORT], "int32")
    hidden = model.backbone(np.array([[CLS] + SHORT], "int32"))
    expected = model.get_layer("logits")(hidden[:, 0])
    np.testing.assert_allclose(np.asarray(model(token_ids)), np.asarray(expected), atol=1e-5)


# --- stratified_split -------------------------------------------------------------------------------------------


def skewed_corpus() -> LabelledCorpus:
    """87 records of 3 classes (50, 30, 7), interleaved; text i is f"t{i}" so parts map back to file positions."""
    labels = [0] * 50 + [1] * 30 + [2] * 7
    np.random.default_rng(1).shuffle(labels)
    return LabelledCorpus([f"t{i}" for i in range(len(labels))], labels, ["a", "b", "c"], ReadReport("skewed"))


def positions(part: LabelledCorpus) -> list[int]:
    return [int(text[1:]) for text in part.texts]


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.75])
def test_stratified_split_keeps_class_shares(fraction):
    corpus = skewed_corpus()
    rest, held_out = stratified_split(corpus, fraction, seed=3)
    totals = collections.Counter(corpus.labels)
    held = collections.Counter(held_out.labels)
    assert held == {label: round(count * fraction) for label, count in totals.items()}
    assert collections.Counter(rest.labels) == totals - held
    assert rest.label_names == held_out.label_names == ["a", "b", "c"]
    for part in (rest, held_out):
        assert all(corpus.labels[i] == label for i, label in zip(positions(part), part.labels))
    assert "held out: " in held_out.report.source and "skewed" in held_out.report.source


def test_stratified_split_parts_cover_the_corpus_in_file_order():
    corpus = skewed_corpus()
    rest, held_out = stratified_split(corpus, 0.3)
    rest_positions, held_positions = positions(rest), positions(held_out)
    assert not set(rest_positions) & set(held_positions)
    assert sorted(rest_positions + held_positions) == list(range(len(corpus)))
    assert rest_positions == sorted(rest_positions) and held_positions == sorted(held_positions)


def test_stratified_split_is_seeded():
    corpus = skewed_corpus()
    first = positions(stratified_split(corpus, 0.2, seed=0)[1])
    assert positions(stratified_split(corpus, 0.2, seed=0)[1]) == first
    assert positions(stratified_split(corpus, 0.2, seed=1)[1]) != first


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_stratified_split_needs_a_fraction_strictly_inside_0_1(fraction):
    with pytest.raises(ValueError, match="fraction must be strictly between 0 and 1"):
        stratified_split(skewed_corpus(), fraction)


# --- The classify corpora ---------------------------------------------------------------------------------------


def test_sms_spam_sample_splits_are_a_stratified_partition():
    whole = data.load("sms_spam_sample", "all")
    assert len(whole) == 2000 and whole.label_names == ["ham", "spam"]
    splits = {split: load_split("sms_spam_sample", split) for split in ("train", "val", "test")}
    assert {split: len(corpus) for split, corpus in splits.items()} == {"train": 1440, "val": 160, "test": 400}
    # Records, not texts, are disjoint (the corpus repeats some messages): the parts add up to the corpus.
    records = [collections.Counter(zip(corpus.texts, corpus.labels)) for corpus in splits.values()]
    assert sum(records, collections.Counter()) == collections.Counter(zip(whole.texts, whole.labels))
    spam_share = sum(whole.labels) / len(whole)
    assert spam_share == pytest.approx(0.134, abs=0.001)
    for split, corpus in splits.items():
        assert corpus.label_names == ["ham", "spam"]
        assert sum(corpus.labels) / len(corpus) == pytest.approx(spam_share, abs=0.005), split
    assert load_split("sms_spam_sample", "test").texts == splits["test"].texts, "the same split every time"


def test_load_split_names_the_choices():
    with pytest.raises(ValueError, match="unknown corpus 'nope': the classify app knows sst2, ag_news, sms_spam, sms"):
        load_split("nope", "train")
    with pytest.raises(ValueError, match="unknown split 'dev' of sms_spam_sample: choose one of train, val, test"):
        load_split("sms_spam_sample", "dev")


@pytest.mark.full_data
@pytest.mark.skipif(
    not (DATA_DIR / "ag_news" / "test.csv.gz").exists(),
    reason=f"AG News not found at {DATA_DIR / 'ag_news' / 'test.csv.gz'}: set KERASLLM_DATA to the shared data folder",
)
def test_ag_news_splits():
    splits = {split: load_split("ag_news", split, str(DATA_DIR)) for split in ("train", "val", "test")}
    assert {split: len(corpus) for split, corpus in splits.items()} == {"train": 5472, "val": 608, "test": 1520}
    assert len(splits["test"].label_names) == 4
    assert collections.Counter(splits["test"].labels) == {label: 380 for label in range(4)}


# --- ClassifyConfig ---------------------------------------------------------------------------------------------


def test_every_preset_loads():
    presets = ClassifyConfig.presets()
    assert {"bilstm", "gru", "simple_rnn", "transformer", "tiny_bilstm", "tiny_transformer"} <= set(presets)
    for name in presets:
        config = ClassifyConfig.load(name)
        assert config.model in ClassifyConfig.MODELS and 1 <= config.window_stride <= config.max_tokens, name


def preset_with(name: str, tmp_path, **changes) -> str:
    values = json.loads((CONFIG_DIR / f"{name}.json").read_text())
    model_args = changes.pop("model_args", {})
    values.update(changes)
    values["model_args"].update(model_args)
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(values))
    return str(path)


@pytest.mark.parametrize(
    ("preset", "changes", "message"),
    [
        ("tiny_bilstm", {"learning_rate": "fast"}, 'learning_rate must be a number or null, got "fast"'),
        ("tiny_bilstm", {"max_tokens": 32.5}, "max_tokens must be an integer, got 32.5"),
        ("tiny_bilstm", {"aggregate": "median"}, r"aggregate must be one of \['mean', 'max'\], got 'median'"),
        ("tiny_bilstm", {"stride": 33}, "stride must be between 1 and max_tokens=32, got 33"),
        ("tiny_bilstm", {"stride": 0}, "stride must be between 1 and max_tokens=32, got 0"),
        ("tiny_bilstm", {"learning_rate": 0}, "learning_rate must be a positive number, got 0"),
        ("tiny_bilstm", {"tokens_per_batch": 16}, r"tokens_per_batch \(16\) must hold one window of max_tokens"),
        ("tiny_bilstm", {"model_args": {"hidden_dim": 32}}, "model_args: unknown argument 'hidden_dim'; known: "),
        ("tiny_bilstm", {"model_args": {"units": "many"}}, 'model_args: units must be an integer, got "many"'),
        ("tiny_bilstm", {"model_args": {"cls_id": 6}}, "model_args: unknown argument 'cls_id'"),
        ("tiny_bilstm", {"window": 32}, r"unknown config keys \['window'\]"),
        ("tiny_transformer", {"model_args": {"num_classes": 3}}, "model_args: unknown argument 'num_classes'"),
        ("tiny_transformer", {"max_tokens": 64}, r"max_tokens \(64 \+ \[CLS\]\) exceeds model_args.max_length \(64\)"),
        (
            "tiny_transformer",
            {"max_tokens": 65, "model_args": {"pooling": "mean"}},
            r"max_tokens \(65\) exceeds model_args.max_length \(64\)",
        ),
    ],
)
def test_a_bad_config_is_one_line_naming_the_key(preset, changes, message, tmp_path):
    path = preset_with(preset, tmp_path, **changes)
    with pytest.raises(ValueError, match=message) as error:
        ClassifyConfig.load(path)
    assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


def test_max_tokens_may_fill_a_transformer_exactly(tmp_path):
    assert ClassifyConfig.load(preset_with("tiny_transformer", tmp_path, max_tokens=63)).max_tokens == 63
    mean = preset_with("tiny_transformer", tmp_path, max_tokens=64, model_args={"pooling": "mean"})
    assert ClassifyConfig.load(mean).max_tokens == 64


# --- read_labelled ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [False, True])
def test_an_unknown_label_names_the_file_and_the_record(header, tmp_path):
    lines = ["ham\tsee you at noon", "spam\tWIN a prize", "eggs\tthree", "ham\tok", "bacon\tfour"]
    if header:
        lines[0] = "label\ttext"
    path = tmp_path / "labelled.tsv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    fields = {"text_field": "text", "label_field": "label"} if header else {"text_field": 1, "label_field": 0}
    with pytest.raises(ValueError) as error:
        read_labelled(path, label_values=["ham", "spam"], header=header, file_format="tsv", **fields)
    assert str(error.value).startswith(f"{path} record 3: unexpected label value(s) ['bacon', 'eggs']")
    assert "expected one of ['ham', 'spam']" in str(error.value)
