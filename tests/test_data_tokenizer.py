"""SubwordTokenizer and the WordPiece trainer, on the embedded sample (no shared data needed)."""

from __future__ import annotations

import pytest
import tensorflow as tf

from kerasllm.data import registry
from kerasllm.data.tokenizer import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
    SubwordTokenizer,
    load_vocabulary,
    normalize,
    train_wordpiece_vocabulary,
)


@pytest.fixture(scope="module")
def sample():
    return {split: registry.load("sample", split) for split in ("train", "val", "test")}


@pytest.fixture(scope="module")
def english(sample) -> SubwordTokenizer:
    return SubwordTokenizer(train_wordpiece_vocabulary(sample["train"].sources, 2000, min_frequency=2))


def texts(tensor) -> list[str]:
    return [value.decode("utf-8") for value in tensor.numpy()]


def test_reserved_ids_are_fixed(english):
    assert (PAD_ID, UNK_ID, START_ID, END_ID) == (0, 1, 2, 3)
    assert RESERVED_TOKENS == ["[PAD]", "[UNK]", "[START]", "[END]"]
    assert english.vocabulary[:4] == RESERVED_TOKENS
    with pytest.raises(ValueError, match="must start with"):
        SubwordTokenizer(["[UNK]", "[PAD]", "[START]", "[END]", "a"])
    with pytest.raises(ValueError, match="duplicate"):
        SubwordTokenizer(RESERVED_TOKENS + ["a", "a"])


def test_vocabulary_is_cased_and_covers_every_character_twice(sample, english):
    vocabulary = set(english.vocabulary)
    characters = set("".join(texts(normalize(tf.constant(sample["train"].sources)))).replace(" ", ""))
    assert all(char in vocabulary and "##" + char in vocabulary for char in characters)
    assert "Tom" in vocabulary and "tom" not in vocabulary
    assert english.vocabulary_size == len(english.vocabulary) <= 2000


def test_round_trip_on_real_sentences(sample, english):
    sentences = sample["val"].sources + sample["test"].sources  # 400 sentences not used for training
    ids = english.tokenize(tf.constant(sentences))
    assert ids.dtype == tf.int32
    assert not tf.reduce_any(ids.flat_values == UNK_ID)  # every character was seen in training
    assert texts(english.detokenize(ids)) == texts(english.normalize(tf.constant(sentences)))


def test_round_trip_on_a_second_language(sample):
    french = SubwordTokenizer(train_wordpiece_vocabulary(sample["train"].targets, 2000, min_frequency=2))
    sentences = sample["val"].targets
    known = [s for s in sentences if not tf.reduce_any(french.tokenize(tf.constant([s])).flat_values == UNK_ID)]
    assert len(known) > 0.95 * len(sentences)  # a few use characters absent from train, e.g. rare accents
    # French typography puts U+202F before "?" and "!": normalization makes it a plain space.
    assert any("\u202f" in s for s in known)
    assert texts(french.detokenize(french.tokenize(tf.constant(known)))) == texts(normalize(tf.constant(known)))


def test_punctuation_is_a_suffix_piece_not_a_word(english):
    ids = english.tokenize(tf.constant(["Tom laughed."]))[0].numpy()
    pieces = [english.vocabulary[i] for i in ids]
    assert pieces[-1].endswith(".") and "." not in pieces[:-1] and "##." in english.vocabulary
    assert texts(english.detokenize(english.tokenize(tf.constant(["Tom laughed ."]))))[0] == "Tom laughed ."
    assert texts(english.detokenize(english.tokenize(tf.constant(["Tom laughed."]))))[0] == "Tom laughed."


def test_normalize(english):
    raw = tf.constant(["  Two\tmen\u00a0and\u3000a ﬁsh\n\n", "café", "cafe\u0301"])
    assert texts(english.normalize(raw)) == ["Two men and a fish", "café", "café"]


def test_empty_strings_give_no_tokens(english):
    ids = english.tokenize(tf.constant(["", "   ", "Tom"]))
    assert ids.row_lengths().numpy().tolist()[:2] == [0, 0]
    assert texts(english.detokenize(ids))[:2] == ["", ""]
    assert english.tokenize(tf.constant([], tf.string)).shape[0] == 0


def test_long_line_does_not_crash(english):
    words = " ".join(["Tom"] * 3334)  # 10,001 characters
    one_word = "x" * 10_000
    ids = english.tokenize(tf.constant([words, one_word]))
    assert ids.row_lengths().numpy().tolist() == [3334, 1]
    assert ids[1].numpy().tolist() == [UNK_ID]  # longer than max_bytes_per_word


def test_invalid_utf8_is_replaced_in_graph(english):
    raw = tf.constant([b"Tom \xff\xfe is here", b"caf\xe9"])
    normalized = texts(english.normalize(raw))
    assert normalized == ["Tom \ufffd\ufffd is here", "caf\ufffd"]
    ids = english.tokenize(raw)
    assert ids[0].numpy().tolist()[1] == UNK_ID
    assert texts(english.detokenize(ids))[0] == "Tom [UNK] is here"


def test_emoji_cjk_and_rtl_become_unk(english):
    raw = tf.constant(["I love 😀 tea", "你好世界", "שלום עולם", "مرحبا بالعالم"])
    ids = english.tokenize(raw)
    assert ids[0].numpy().tolist()[2] == UNK_ID and ids[0].numpy().tolist()[0] != UNK_ID
    assert all(set(row) == {UNK_ID} for row in ids[1:].to_list())
    assert texts(english.detokenize(ids)) == ["I love [UNK] tea", "[UNK]", "[UNK] [UNK]", "[UNK] [UNK]"]


def test_reserved_token_text_cannot_inject_control_ids(english):
    ids = english.tokenize(tf.constant(["[END] [START] [PAD] Tom"])).flat_values.numpy()
    assert not {PAD_ID, START_ID, END_ID} & set(ids.tolist())


def test_detokenize_drops_pad_and_start_and_stops_at_end(english):
    tom = english.tokenize(tf.constant(["Tom"]))[0].numpy().tolist()
    run = english.tokenize(tf.constant(["runs."]))[0].numpy().tolist()
    ragged = tf.ragged.constant([[START_ID, *tom, *run, END_ID, *tom], [*tom]])
    dense = ragged.to_tensor(PAD_ID)
    assert dense[1, -1] == PAD_ID
    assert texts(english.detokenize(dense)) == ["Tom runs.", "Tom"]
    assert texts(english.detokenize(ragged)) == ["Tom runs.", "Tom"]
    assert texts(english.detokenize(tf.cast(dense, tf.int64))) == ["Tom runs.", "Tom"]


def test_save_and_load(tmp_path, english, sample):
    path = tmp_path / "en.vocab"
    english.save(path)
    assert path.read_text(encoding="utf-8").split("\n")[:4] == RESERVED_TOKENS
    restored = SubwordTokenizer.load(path)
    assert restored.vocabulary == english.vocabulary == load_vocabulary(path)
    batch = tf.constant(sample["test"].sources[:50])
    assert restored.tokenize(batch).to_list() == english.tokenize(batch).to_list()


def test_runs_inside_tf_function_with_unknown_batch_size(english):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(strings):
        return english.detokenize(english.tokenize(strings))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def detokenize(ids):
        return english.detokenize(ids)

    assert texts(round_trip(tf.constant(["Tom  runs.", ""]))) == ["Tom runs.", ""]
    ids = english.tokenize(tf.constant(["Tom runs."])).to_tensor()
    assert texts(detokenize(ids)) == ["Tom runs."]


def test_exports_in_a_saved_model(tmp_path, english):
    module = tf.Module()
    module.tokenizer = english
    module.tokenize = tf.function(lambda s: english.tokenize(s).to_tensor(), input_signature=[tf.TensorSpec([None], tf.string)])
    module.detokenize = tf.function(english.detokenize, input_signature=[tf.TensorSpec([None, None], tf.int32)])
    tf.saved_model.save(module, str(tmp_path / "tokenizer"))
    restored = tf.saved_model.load(str(tmp_path / "tokenizer"))
    ids = restored.tokenize(tf.constant(["Tom runs.", "I love 😀"]))
    assert ids.numpy().tolist() == english.tokenize(tf.constant(["Tom runs.", "I love 😀"])).to_tensor().numpy().tolist()
    assert texts(restored.detokenize(ids)) == ["Tom runs.", "I love [UNK]"]


def test_trainer_errors():
    with pytest.raises(ValueError, match="no words"):
        train_wordpiece_vocabulary(["", "   "], 100)
    with pytest.raises(ValueError, match="too small"):
        train_wordpiece_vocabulary(["abcdefghij"], 20)


def test_trainer_respects_the_size_and_is_deterministic(sample):
    first = train_wordpiece_vocabulary(sample["train"].sources, 600, min_frequency=2)
    assert len(first) <= 600 and len(first) >= 0.9 * 600
    assert first == train_wordpiece_vocabulary(sample["train"].sources, 600, min_frequency=2)
