"""SubwordTokenizer and the WordPiece trainer, on the embedded sample (no shared data needed)."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest
import tensorflow as tf

from kerasllm.data import registry
from kerasllm.data.tokenizer import (
    BERT_SPECIAL_TOKENS,
    CLS,
    END_ID,
    MASK,
    PAD_ID,
    RESERVED_TOKENS,
    SEP,
    START_ID,
    UNK_ID,
    SubwordTokenizer,
    byte_spans_to_char_spans,
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


@pytest.fixture(scope="module")
def bert(sample) -> SubwordTokenizer:
    vocabulary = train_wordpiece_vocabulary(
        sample["train"].sources, 2000, special_tokens=BERT_SPECIAL_TOKENS, min_frequency=2
    )
    return SubwordTokenizer(vocabulary)


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

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize_with_offsets(strings):
        return english.tokenize_with_offsets(strings)

    assert texts(round_trip(tf.constant(["Tom  runs.", ""]))) == ["Tom runs.", ""]
    ids = english.tokenize(tf.constant(["Tom runs."])).to_tensor()
    assert texts(detokenize(ids)) == ["Tom runs."]
    for batch in (["Tom  runs.", "", " ﬁsh"], []):
        raw = tf.constant(batch, tf.string)
        traced = [tensor.to_list() for tensor in tokenize_with_offsets(raw)]
        assert traced == [tensor.to_list() for tensor in english.tokenize_with_offsets(raw)]


def test_exports_in_a_saved_model(tmp_path, english):
    module = tf.Module()
    module.tokenizer = english
    module.tokenize = tf.function(
        lambda s: english.tokenize(s).to_tensor(), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    module.detokenize = tf.function(english.detokenize, input_signature=[tf.TensorSpec([None, None], tf.int32)])
    module.tokenize_with_offsets = tf.function(
        lambda s: [tensor.to_tensor(-1) for tensor in english.tokenize_with_offsets(s)],
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "tokenizer"))
    restored = tf.saved_model.load(str(tmp_path / "tokenizer"))
    ids = restored.tokenize(tf.constant(["Tom runs.", "I love 😀"]))
    expected_ids = english.tokenize(tf.constant(["Tom runs.", "I love 😀"])).to_tensor()
    assert ids.numpy().tolist() == expected_ids.numpy().tolist()
    assert texts(restored.detokenize(ids)) == ["Tom runs.", "I love [UNK]"]
    raw = tf.constant(["  Tom\u3000runs.", "I love 😀", ""])
    expected = [tensor.to_tensor(-1).numpy().tolist() for tensor in english.tokenize_with_offsets(raw)]
    assert [tensor.numpy().tolist() for tensor in restored.tokenize_with_offsets(raw)] == expected


def test_trainer_errors():
    with pytest.raises(ValueError, match="no words"):
        train_wordpiece_vocabulary(["", "   "], 100)
    with pytest.raises(ValueError, match="too small"):
        train_wordpiece_vocabulary(["abcdefghij"], 20)


def test_trainer_respects_the_size_and_is_deterministic(sample):
    first = train_wordpiece_vocabulary(sample["train"].sources, 600, min_frequency=2)
    assert len(first) <= 600 and len(first) >= 0.9 * 600
    assert first == train_wordpiece_vocabulary(sample["train"].sources, 600, min_frequency=2)


# A vocabulary file as written before special tokens beyond the core four existed.
FOUR_TOKEN_VOCABULARY = "[PAD]\n[UNK]\n[START]\n[END]\na\nb\nc\n##a\n##b\n##c\nab\n"


def test_a_four_token_vocabulary_file_loads_with_the_same_ids(tmp_path):
    path = tmp_path / "source.vocab"
    path.write_text(FOUR_TOKEN_VOCABULARY, encoding="utf-8")
    tokenizer = SubwordTokenizer.load(path)
    assert tokenizer.special_tokens == RESERVED_TOKENS
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.start_id, tokenizer.end_id) == (0, 1, 2, 3)
    ids = tokenizer.tokenize(tf.constant(["ab cab x"]))
    assert ids.to_list() == [[10, 6, 7, 8, UNK_ID]]
    assert texts(tokenizer.detokenize(ids)) == ["ab cab [UNK]"]
    with pytest.raises(ValueError, match=re.escape(f"the vocabulary {path} has no [MASK]; retrain it with")):
        _ = tokenizer.mask_id


def test_special_tokens_follow_the_core_ones(sample, english, bert):
    # The frequency floor fits 2000 entries, so the specials only shift everything after the core tokens.
    assert bert.vocabulary == RESERVED_TOKENS + [MASK, SEP, CLS] + english.vocabulary[4:]
    assert bert.special_tokens == RESERVED_TOKENS + [MASK, SEP, CLS]
    ids = (bert.pad_id, bert.unk_id, bert.start_id, bert.end_id, bert.mask_id, bert.sep_id, bert.cls_id)
    assert ids == (0, 1, 2, 3, 4, 5, 6) and all(type(i) is int for i in ids)
    assert bert.special_token_id(CLS) == 6
    with pytest.raises(ValueError, match=r"has no \[NOPE\]; retrain it with .*special_tokens="):
        bert.special_token_id("[NOPE]")
    with pytest.raises(ValueError, match=r"vocabulary of \d+ tokens given to SubwordTokenizer has no \[SEP\]"):
        _ = english.sep_id
    batch = tf.constant(sample["test"].sources[:50])
    shifted = [[i + 3 if i >= 4 else i for i in row] for row in english.tokenize(batch).to_list()]
    assert bert.tokenize(batch).to_list() == shifted


def test_special_tokens_survive_save_and_load(tmp_path, bert):
    path = tmp_path / "bert.vocab"
    bert.save(path)
    restored = SubwordTokenizer.load(path)
    assert restored.special_tokens == bert.special_tokens and restored.mask_id == 4


def test_special_token_arguments_are_checked():
    for bad, message in [
        (("mask",), "capital letters"),
        (("[Mask]",), "capital letters"),
        (("[UNK]",), "core token"),
        ((MASK, MASK), "more than once"),
        (MASK, "not the string"),
    ]:
        with pytest.raises(ValueError, match=message):
            train_wordpiece_vocabulary(["a b"], 100, special_tokens=bad, min_frequency=1)


def test_special_token_text_cannot_inject_control_ids(sample):
    text = "[MASK] [SEP] [CLS] [END] Tom"
    vocabulary = train_wordpiece_vocabulary(
        sample["train"].sources + [text], 2000, special_tokens=BERT_SPECIAL_TOKENS, min_frequency=2
    )
    tokenizer = SubwordTokenizer(vocabulary)
    ids = tokenizer.tokenize(tf.constant([text]))
    assert not set(ids.flat_values.numpy().tolist()) & set(range(len(tokenizer.special_tokens)))
    assert texts(tokenizer.detokenize(ids)) == [text]


def test_detokenize_drops_every_special_token_but_unk(bert):
    tom = bert.tokenize(tf.constant(["Tom"]))[0].numpy().tolist()
    run = bert.tokenize(tf.constant(["runs."]))[0].numpy().tolist()
    cls, sep, mask = bert.cls_id, bert.sep_id, bert.mask_id
    ragged = tf.ragged.constant([[START_ID, cls, *tom, sep, mask, UNK_ID, *run, END_ID, *tom], [mask, *tom, sep]])
    assert texts(bert.detokenize(ragged)) == ["Tom [UNK] runs.", "Tom"]
    assert texts(bert.detokenize(ragged.to_tensor(PAD_ID))) == ["Tom [UNK] runs.", "Tom"]


def test_vocabulary_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.vocab"
    for load in (load_vocabulary, SubwordTokenizer.load):
        with pytest.raises(FileNotFoundError, match=re.escape(f"vocabulary file {missing} does not exist")):
            load(missing)
    rebuild = "delete it and rerun training to rebuild it"
    cases = {
        "empty.vocab": (b"", "is empty: "),
        "words.vocab": (b"a\nb\n", "starts with ['a', 'b'], not the core tokens"),
        "latin1.vocab": ("[PAD]\n[UNK]\n[START]\n[END]\ncafé\n".encode("latin-1"), "is not UTF-8 text"),
        "cut.vocab": (b"[PAD]\n[UNK]\n[START]\n[END]\nab", "does not end with a newline"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        for load in (load_vocabulary, SubwordTokenizer.load):
            with pytest.raises(ValueError, match=re.escape(f"{path} {message}") + ".*" + re.escape(rebuild)):
                load(path)


# A hand-built vocabulary: ids 4.. are "fi", "f", "##i", ... in this order.
SPAN_VOCABULARY = RESERVED_TOKENS + ["fi", "f", "##i", "##sh", "##l", "##y", "A", "##b", "##c", "##.", "Å", "x"]


def test_offsets_index_the_original_text():
    tokenizer = SubwordTokenizer(SPAN_VOCABULARY)
    # A ligature, ideographic spaces, full-width letters, a decomposed Å, an emoji.
    text = "  ﬁsh\u3000\u3000Ａｂｃ.\tA\u030a 😀\n"
    raw = tf.constant([text, "\u212b ﬂy", b"x\xff  x", "", "   "])
    ids, starts, ends = tokenizer.tokenize_with_offsets(raw)
    assert ids.dtype == tf.int32 and starts.dtype == ends.dtype == tf.int64
    pieces = [[SPAN_VOCABULARY[i] for i in row] for row in ids.to_list()]
    assert pieces[0] == ["fi", "##sh", "A", "##b", "##c", "##.", "Å", "[UNK]"]
    spans = [list(zip(row_starts, row_ends)) for row_starts, row_ends in zip(starts.to_list(), ends.to_list())]
    assert spans[0] == [(2, 5), (5, 7), (13, 16), (16, 19), (19, 22), (22, 23), (24, 27), (28, 32)]
    originals = [text.encode()[start:end].decode() for start, end in spans[0]]
    assert originals == ["ﬁ", "sh", "Ａ", "ｂ", "ｃ", ".", "A\u030a", "😀"]
    assert byte_spans_to_char_spans(text, starts[0].numpy(), ends[0].numpy()) == [
        (2, 3),
        (3, 5),
        (7, 8),
        (8, 9),
        (9, 10),
        (10, 11),
        (12, 14),
        (15, 16),
    ]
    # The Angstrom sign is NFKC "Å"; the pieces "f", "##l" split the ligature "ﬂ" and so both cover it.
    assert pieces[1] == ["Å", "f", "##l", "##y"] and spans[1] == [(0, 3), (4, 7), (4, 7), (7, 8)]
    # Invalid UTF-8: the word "x\ufffd" is [UNK] and covers the original invalid byte.
    assert ids[2].numpy().tolist() == [UNK_ID, 15] and spans[2] == [(0, 2), (4, 5)]
    assert spans[3:] == [[], []]


def test_byte_spans_to_char_spans():
    assert byte_spans_to_char_spans("né à 😀", [0, 4, 7], [3, 6, 11]) == [(0, 2), (3, 4), (5, 6)]
    assert byte_spans_to_char_spans("", [0], [0]) == [(0, 0)]
    with pytest.raises(ValueError, match="not a character boundary"):
        byte_spans_to_char_spans("né", [0], [2])  # inside "é"
    with pytest.raises(ValueError, match="not a character boundary"):
        byte_spans_to_char_spans("né", [0], [4])  # past the end


# Fragments whose normalization changes lengths, merges or splits characters, or is whitespace.
FRAGMENTS = [
    "Tom",
    "runs",
    "a",
    "x",
    ".",
    ",",
    "ﬁ",
    "ﬂ",
    "ﬃ",
    "Ａ",
    "ｂ",
    "Å",
    "A\u030a",
    "\u212b",
    "é",
    "e\u0301",
    "\u0301",
    "\u00a8",
    "½",
    "²",
    "ﷺ",
    "\u3000",
    "\u00a0",
    "\u2028",
    "\u0085",
    "\t",
    " ",
    "  ",
    "\n",
    "😀",
    "👍🏽",
    "你好",
    "ß",
    "\u1100\u1161",
    "ǅ",
    "[MASK]",
    "\ufb01sh",
]
INVALID = [b"\xff", b"\xe9", b"\xe0\x80", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\xc3"]


def random_strings(count: int, *, invalid: bool, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    pool = [fragment.encode() for fragment in FRAGMENTS] + (INVALID if invalid else [])
    return [b"".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(count)]


def assert_spans_cover_their_pieces(tokenizer: SubwordTokenizer, raw: list[bytes]) -> None:
    """ids are those of tokenize; each non-[UNK] token's original slice, normalized, is its piece text
    (contains it, where normalization made one unit of a character its token shares with a neighbour)."""
    ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(raw, tf.string))
    assert ids.to_list() == tokenizer.tokenize(tf.constant(raw, tf.string)).to_list()
    slices, checks = [], []
    for text, row, row_starts, row_ends in zip(raw, ids.to_list(), starts.to_list(), ends.to_list()):
        spans = list(zip(row_starts, row_ends))
        assert spans == sorted(spans) and all(0 <= start <= end <= len(text) for start, end in spans)
        for index, (token_id, (start, end)) in enumerate(zip(row, spans)):
            shared = index > 0 and start < spans[index - 1][1]
            shared |= index + 1 < len(spans) and spans[index + 1][0] < end
            piece = tokenizer.vocabulary[token_id].removeprefix("##")
            slices.append(text[start:end])
            checks.append((token_id, piece, shared, text, start, end))
    normalized_slices = texts(normalize(tf.constant(slices, tf.string)))
    for normalized, (token_id, piece, shared, text, start, end) in zip(normalized_slices, checks):
        context = f"{text!r}[{start}:{end}] -> {normalized!r}, piece {piece!r}"
        if token_id == UNK_ID:
            assert start < end, context
        elif shared:
            assert piece in normalized, context
        else:
            assert normalized == piece, context


def test_offsets_on_real_sentences(sample, english):
    sentences = sample["val"].sources + sample["test"].sources
    assert_spans_cover_their_pieces(english, [sentence.encode() for sentence in sentences])


def test_offsets_on_varied_text(english):
    raw = random_strings(400, invalid=False)
    # Trained on the same strings, so most pieces are known and the spans of ## pieces are checked too.
    varied = SubwordTokenizer(train_wordpiece_vocabulary([text.decode() for text in raw], 400, min_frequency=1))
    for tokenizer in (english, varied):
        assert_spans_cover_their_pieces(tokenizer, raw)
    unicode_normalized = [unicodedata.normalize("NFKC", text.decode()) for text in raw]
    assert any(len(a) != len(b.decode()) for a, b in zip(unicode_normalized, raw))  # lengths do change


def test_offsets_with_invalid_utf8_index_the_original_bytes(english):
    raw = random_strings(400, invalid=True, seed=1)
    assert any(b"\xff" in text for text in raw)
    varied = SubwordTokenizer(train_wordpiece_vocabulary(texts(normalize(tf.constant(raw))), 400, min_frequency=1))
    for tokenizer in (english, varied):
        assert_spans_cover_their_pieces(tokenizer, raw)


def test_offsets_of_long_and_unknown_words(english):
    one_word = "x" * 10_000
    raw = tf.constant([f" Tom {one_word} 你好 ", "I love 😀 tea"])
    ids, starts, ends = english.tokenize_with_offsets(raw)
    assert ids.to_list() == english.tokenize(raw).to_list()
    assert ids[0].numpy().tolist()[-2:] == [UNK_ID, UNK_ID]
    assert starts[0].numpy().tolist()[-2:] == [5, 10_006] and ends[0].numpy().tolist()[-2:] == [10_005, 10_012]
    assert starts[1].numpy().tolist()[2] == 7 and ends[1].numpy().tolist()[2] == 11  # the emoji's 4 bytes
