"""Cased WordPiece subword tokenizer that runs entirely in the TensorFlow graph.

Design: text is split on whitespace only, never on punctuation, so punctuation attached to a word
stays in its pieces ("shirt." -> "shirt", "##.", or one piece "shirt." if that was learned) and
detokenization is exact: pieces starting
with `##` join the previous piece, words are joined with one space. Hence
`detokenize(tokenize(x)) == normalize(x)` for any text whose characters were seen in training (the
trainer puts every seen character in the vocabulary both as a word start and as a `##` piece, so such
text never needs [UNK]). Nothing is lowercased: the project reports cased sacreBLEU.

Every vocabulary starts with the four core tokens, whose ids are fixed for the whole project:
[PAD]=0, [UNK]=1, [START]=2, [END]=3. A vocabulary may reserve more special tokens right after them
(ids 4, 5, ...; e.g. [MASK], [SEP], [CLS] for masked-LM pre-training and QA), each a name of capital
letters and `_` in brackets; the characters that follow are single characters, so the special tokens of
a vocabulary file are its core tokens plus the leading run of `[NAME]` entries after them.

`SubwordTokenizer.tokenize_with_offsets` also gives each token's span in the original string as byte
offsets into its UTF-8 encoding (TensorFlow's convention); `byte_spans_to_char_spans` turns them into
Python `str` indices.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

PAD, UNK, START, END = "[PAD]", "[UNK]", "[START]", "[END]"
RESERVED_TOKENS = [PAD, UNK, START, END]  # the core tokens every vocabulary starts with
PAD_ID, UNK_ID, START_ID, END_ID = range(len(RESERVED_TOKENS))
MASK, SEP, CLS = "[MASK]", "[SEP]", "[CLS]"
BERT_SPECIAL_TOKENS = (MASK, SEP, CLS)
SUFFIX_INDICATOR = "##"
SPECIAL_TOKEN = re.compile(r"\[[A-Z_]+\]")  # the form of every reserved token

# RE2's \s is ASCII-only; \p{Z} adds the Unicode space/line/paragraph separators, \x{0B} and \x{85}
# are the remaining control characters that str.split() also treats as whitespace.
_WHITESPACE = r"[\s\p{Z}\x{0B}\x{85}]+"


def normalize(strings: tf.Tensor) -> tf.Tensor:
    """Normalize a batch of strings the way the tokenizer sees them (graph-only).

    Invalid UTF-8 byte sequences become U+FFFD, then Unicode NFKC, then every run of whitespace
    (including Unicode separators) becomes one space, then leading/trailing spaces are stripped.
    Case and punctuation are kept.

    Args:
        strings: a string tensor of any shape.

    Returns:
        The normalized strings, same shape.
    """
    strings = tf_text.normalize_utf8(_replace_invalid_utf8(strings), "NFKC")
    return tf.strings.strip(tf.strings.regex_replace(strings, _WHITESPACE, " "))


def _replace_invalid_utf8(strings: tf.Tensor) -> tf.Tensor:
    return tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)


def _words(strings: tf.Tensor) -> tf.RaggedTensor:
    return tf.strings.split(normalize(strings))


def train_wordpiece_vocabulary(
    texts: Iterable[str],
    vocabulary_size: int,
    *,
    special_tokens: Sequence[str] = (),
    min_frequency: int = 5,
    batch_size: int = 4096,
) -> list[str]:
    """Train a cased WordPiece vocabulary on whitespace-split, normalized text.

    Words are split exactly as `SubwordTokenizer` splits them, then tensorflow-text's WordPiece learner
    (the library behind keras-hub's `compute_word_piece_vocabulary` and tf-text's `bert_vocab` tool)
    learns the pieces. Every character seen in training is put in the vocabulary both as a
    word-initial piece and as a `##` piece, so text made of seen characters never needs [UNK].

    Args:
        texts: training texts (e.g. the train split of one language).
        vocabulary_size: maximum vocabulary size, reserved tokens included.
        special_tokens: reserved tokens beyond the four core ones (e.g. `BERT_SPECIAL_TOKENS`), given
            ids 4, 5, ... in this order; each is a name of capital letters and `_` in brackets.
        min_frequency: pieces seen fewer times are not learned, so a small corpus may give fewer
            than `vocabulary_size` entries (the learner's frequency floor).
        batch_size: texts normalized per TensorFlow call.

    Returns:
        The vocabulary: the four core tokens (ids 0-3), the special tokens, the characters, the `##`
        characters, then the learned pieces, most frequent first.

    Raises:
        ValueError: no words in `texts`, `vocabulary_size` is too small to hold every character twice,
            or a special token is not of the form `[NAME]`, is a core token or is given twice.

    Example:
        >>> vocabulary = train_wordpiece_vocabulary(["A man in a blue shirt.", "A dog runs."], 100)
        >>> vocabulary[:4]
        ['[PAD]', '[UNK]', '[START]', '[END]']
    """
    reserved = RESERVED_TOKENS + _check_special_tokens(special_tokens)
    word_counts = _count_words(texts, batch_size)
    if not word_counts:
        raise ValueError("cannot train a vocabulary: the texts contain no words")
    characters = sorted(set("".join(word_counts)))
    base = reserved + characters + [SUFFIX_INDICATOR + char for char in characters]
    if len(base) > vocabulary_size:
        raise ValueError(
            f"vocabulary_size {vocabulary_size} is too small: the {len(characters)} distinct characters need "
            f"{len(base)} entries (each as a word start and as a ## piece, plus {len(reserved)} reserved)"
        )
    taken = set(base)
    pieces = _learn_pieces(word_counts, vocabulary_size, min_frequency, reserved)
    learned = [piece for piece in pieces if piece not in taken]
    return base + learned[: vocabulary_size - len(base)]


def _check_special_tokens(special_tokens: Sequence[str]) -> list[str]:
    if isinstance(special_tokens, str):
        raise ValueError(f"special_tokens must be a sequence of tokens, not the string {special_tokens!r}")
    for token in special_tokens:
        if not SPECIAL_TOKEN.fullmatch(token):
            raise ValueError(f"special token {token!r} must be capital letters and _ in brackets, like {MASK}")
        if token in RESERVED_TOKENS:
            raise ValueError(f"special token {token} is a core token: every vocabulary already has {RESERVED_TOKENS}")
    duplicates = sorted(token for token, count in Counter(special_tokens).items() if count > 1)
    if duplicates:
        raise ValueError(f"special tokens given more than once: {duplicates}")
    return list(special_tokens)


def _count_words(texts: Iterable[str], batch_size: int) -> Counter[str]:
    counts: Counter[bytes] = Counter()
    for batch in tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)).batch(batch_size):
        counts.update(_words(batch).flat_values.numpy())
    return Counter({word.decode("utf-8"): count for word, count in counts.items()})


def _learn_pieces(
    word_counts: Counter[str], vocabulary_size: int, min_frequency: int, reserved: list[str]
) -> list[str]:
    """The learner's vocabulary for the smallest frequency threshold >= min_frequency that fits the size.

    Written here instead of calling the library's `learn()` (or keras-hub's wrapper of it): that
    bisects linearly from the largest word count, about 15 learner passes (2 minutes for Multi30K
    German on this machine), while the frequency floor alone usually fits and costs one pass;
    otherwise interpolating in log-log space finds the threshold in about four passes.
    """
    params = learner.Params(
        upper_thresh=None,
        lower_thresh=min_frequency,
        num_iterations=4,
        max_input_tokens=-1,
        max_token_length=50,
        max_unique_chars=1000,
        vocab_size=vocabulary_size,
        slack_ratio=0.05,
        include_joiner_token=True,
        joiner=SUFFIX_INDICATOR,
        reserved_tokens=reserved,
    )
    all_counts = learner.get_input_words(word_counts.items(), params.reserved_tokens, params.max_token_length)
    allowed = learner.get_allowed_chars(all_counts, params.max_unique_chars)
    words = learner.filter_input_words(all_counts, allowed, params.max_input_tokens)
    low, high = min_frequency, max(min_frequency + 1, max(word_counts.values()))
    pieces = learner.learn_with_thresh(words, low, params)
    if len(pieces) <= vocabulary_size:
        return pieces
    # Search for the threshold by interpolating in log-log space (size ~ threshold ** -k), keeping
    # the bracket: threshold `low` gives too many pieces, `high` few enough.
    # At the largest count only the reserved tokens and characters (twice) remain.
    low_size, high_size, fitting = len(pieces), len(reserved) + 2 * len(allowed), None
    goal = (1 - params.slack_ratio / 2) * vocabulary_size
    while high - low > 1:
        fraction = math.log(low_size / goal) / math.log(low_size / high_size)
        guess = round(math.exp(math.log(low) + fraction * (math.log(high) - math.log(low))))
        threshold = min(high - 1, max(low + 1, guess))
        candidate = learner.learn_with_thresh(words, threshold, params)
        if len(candidate) > vocabulary_size:
            low, low_size = threshold, len(candidate)
            continue
        high, high_size, fitting = threshold, len(candidate), candidate
        if len(candidate) >= (1 - params.slack_ratio) * vocabulary_size:
            break
    return fitting or learner.learn_with_thresh(words, high, params)


def save_vocabulary(vocabulary: Sequence[str], path: str | os.PathLike) -> None:
    """Write a vocabulary as UTF-8 text, one token per line (line i = id i)."""
    Path(path).write_text("".join(f"{token}\n" for token in vocabulary), encoding="utf-8")


def load_vocabulary(path: str | os.PathLike) -> list[str]:
    """Read a vocabulary written by `save_vocabulary`.

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: the file is not UTF-8, is empty, does not end with a newline (so its last line may
            be cut short) or does not start with the core tokens. Every message names the file.
    """
    path = Path(path)
    rebuild = "delete it and rerun training to rebuild it"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"vocabulary file {path} does not exist: give the path of a saved vocabulary, or train one "
            f"(a run learns its vocabularies on first use)"
        ) from None
    except UnicodeDecodeError as error:
        message = f"{path} is not UTF-8 text (bad byte at {error.start}), so not a vocabulary: {rebuild}"
        raise ValueError(message) from None
    if not text:
        raise ValueError(f"{path} is empty: {rebuild}")
    if not text.endswith("\n"):
        raise ValueError(f"{path} does not end with a newline, so its last token may be cut short: {rebuild}")
    # split("\n"), not splitlines(): tokens may legitimately be characters such as U+001C that
    # splitlines() would treat as line breaks.
    vocabulary = text.split("\n")[:-1]
    found = vocabulary[: len(RESERVED_TOKENS)]
    if found != RESERVED_TOKENS:
        raise ValueError(f"{path} starts with {found}, not the core tokens {RESERVED_TOKENS}: {rebuild}")
    return vocabulary


def byte_spans_to_char_spans(text: str, starts: Iterable[int], ends: Iterable[int]) -> list[tuple[int, int]]:
    """Turn spans given as byte offsets into `text`'s UTF-8 encoding into Python `str` indices.

    `SubwordTokenizer.tokenize_with_offsets` gives byte offsets (TensorFlow's convention); Python
    slices `str` by character.

    Args:
        text: the string the spans index (as passed to the tokenizer).
        starts: each span's first byte, e.g. one row of `tokenize_with_offsets`' starts.
        ends: each span's end byte (exclusive).

    Returns:
        One `(start, end)` per span, so that `text[start:end]` is the span's text.

    Raises:
        ValueError: an offset is not at a character boundary of `text`.

    Example:
        >>> byte_spans_to_char_spans("né à", [0, 4], [3, 6])
        [(0, 2), (3, 4)]
    """
    boundaries = [0]  # the byte offset at which each character starts, then the end of the text
    for char in text:
        boundaries.append(boundaries[-1] + len(char.encode("utf-8")))

    def char_index(offset: int) -> int:
        index = bisect.bisect_left(boundaries, offset)
        if index == len(boundaries) or boundaries[index] != offset:
            raise ValueError(f"byte offset {offset} is not a character boundary of {text!r} ({boundaries[-1]} bytes)")
        return index

    return [(char_index(int(start)), char_index(int(end))) for start, end in zip(starts, ends, strict=True)]


def _map_spans(
    keys: tf.RaggedTensor, values: tf.RaggedTensor, starts: tf.RaggedTensor, ends: tf.RaggedTensor
) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Map spans through a monotone offset map known only at `keys` (per row, sorted, from 0 to the end).

    A start maps as the last key at or before it, an end as the first key at or after it, so a mapped
    span covers every unit its original overlaps. Shifting each row past the rows before it sorts the
    flat keys of the whole batch, so one `searchsorted` serves every row.
    """
    shift = tf.cumsum(tf.reduce_max(keys, axis=1) + 1, exclusive=True)

    def flat(offsets: tf.RaggedTensor) -> tf.Tensor:
        return offsets.flat_values + tf.repeat(shift, offsets.row_lengths())

    flat_keys = flat(keys)
    start_index = tf.searchsorted(flat_keys, flat(starts), side="right", out_type=tf.int64) - 1
    end_index = tf.searchsorted(flat_keys, flat(ends), side="left", out_type=tf.int64)
    return (
        starts.with_flat_values(tf.gather(values.flat_values, start_index)),
        ends.with_flat_values(tf.gather(values.flat_values, end_index)),
    )


def _nfkc_with_source_offsets(strings: tf.Tensor) -> tuple[tf.Tensor, tf.RaggedTensor, tf.RaggedTensor]:
    """NFKC-normalize valid UTF-8 strings; also give the output's unit boundaries and the input offsets they map to.

    ICU records normalization as edits; within a changed unit (a ligature, a composed sequence) there
    is no finer mapping, and `find_source_offsets` maps every position inside one to the unit's source
    end. So a position is a unit boundary iff the next position maps further, or it is the end.

    Returns:
        `(normalized, boundaries, sources)`: `[B]` strings and two `[B, (boundaries)]` int64 byte offsets.
    """
    # find_source_offsets crashes on an empty batch (tensorflow-text 2.21): add an empty string, drop it after.
    normalized, offsets_map = tf_text.normalize_utf8_with_offsets_map(tf.concat([strings, [""]], 0), "NFKC")
    widths = tf.cast(tf.strings.length(normalized), tf.int64) + 1
    positions = tf.ragged.range(widths)
    sources = tf_text.find_source_offsets(offsets_map, positions).flat_values
    # On the flat values: slicing and masking the ragged tensors took about 1.5 times as long.
    is_end = positions.flat_values == tf.repeat(widths - 1, widths)
    is_boundary = is_end | (sources < tf.concat([sources[1:], [0]], 0))
    rows = tf.boolean_mask(positions.value_rowids(), is_boundary)

    def boundary_values(values: tf.Tensor) -> tf.RaggedTensor:
        return tf.RaggedTensor.from_value_rowids(tf.boolean_mask(values, is_boundary), rows, positions.nrows())[:-1]

    return normalized[:-1], boundary_values(positions.flat_values), boundary_values(sources)


def _code_point_offsets(strings: tf.Tensor, repaired: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Each code point's start, then the end, in `_replace_invalid_utf8(strings)` and in `strings`.

    Both decode to the same code points (each invalid byte sequence is one U+FFFD in `repaired`), so
    these map offsets in the repaired strings to the original bytes.
    """

    def starts_and_end(texts: tf.Tensor) -> tf.RaggedTensor:
        _, starts = tf.strings.unicode_decode_with_offsets(texts, "UTF-8", errors="replace", replacement_char=0xFFFD)
        return tf.concat([starts, tf.cast(tf.strings.length(texts), tf.int64)[:, None]], axis=1)

    return starts_and_end(repaired), starts_and_end(strings)


class CoreTokenIds:
    """The ids of the four core tokens, the same in every kerasllm vocabulary, as attributes of a tokenizer."""

    pad_id, unk_id, start_id, end_id = PAD_ID, UNK_ID, START_ID, END_ID


class SubwordTokenizer(CoreTokenIds, tf.Module):
    """WordPiece tokenizer as a `tf.Module`: normalize, tokenize and detokenize run as TF ops only.

    It holds no Python state used at run time and no untracked resources, so its methods can be
    traced into a `tf.function` and exported in a SavedModel (load it with `import tensorflow_text`
    so the tf.text ops are registered). All methods take a batch: a 1-D string tensor `[B]`.

    The special tokens are the four core ones and the leading run of `[NAME]` entries after them
    (e.g. [MASK], [SEP], [CLS] of a vocabulary trained with `special_tokens=BERT_SPECIAL_TOKENS`); their
    ids are plain ints (`pad_id`, `mask_id`, ...). Literal text such as "[END]" or "[MASK]" is tokenized
    as ordinary characters: every special token but [UNK] is hidden from the WordPiece matcher, so user
    text can never inject control ids. Words longer than `max_bytes_per_word` bytes, and words with
    characters unseen in training, become a single [UNK].

    Args:
        vocabulary: tokens, id = position; must start with [PAD], [UNK], [START], [END].
        max_bytes_per_word: longer words map to [UNK].
        origin: where the vocabulary came from (`load` passes its file), named in error messages.
        name: module name.

    Example:
        >>> tokenizer = SubwordTokenizer(train_wordpiece_vocabulary(["A man in a blue shirt."], 60))
        >>> ids = tokenizer.tokenize(tf.constant(["A blue  shirt."]))
        >>> tokenizer.detokenize(ids).numpy()
        array([b'A blue shirt.'], dtype=object)
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        *,
        max_bytes_per_word: int = 100,
        origin: str | os.PathLike | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        vocabulary = list(vocabulary)
        self._where = str(origin) if origin is not None else f"of {len(vocabulary)} tokens given to SubwordTokenizer"
        if vocabulary[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
            found = vocabulary[: len(RESERVED_TOKENS)]
            raise ValueError(f"the vocabulary {self._where} must start with {RESERVED_TOKENS}, found {found}")
        duplicates = sorted(token for token, count in Counter(vocabulary).items() if count > 1)
        if duplicates:
            raise ValueError(f"the vocabulary {self._where} has duplicate tokens: {duplicates[:10]}")
        # A tuple of str is not trackable state: the vocabulary lives in the WordPiece model below.
        self._vocabulary = tuple(vocabulary)
        special_count = len(RESERVED_TOKENS)
        while special_count < len(vocabulary) and SPECIAL_TOKEN.fullmatch(vocabulary[special_count]):
            special_count += 1
        self._special_tokens = tuple(vocabulary[:special_count])
        matcher_vocabulary = list(vocabulary)
        for index in range(special_count):
            if index != UNK_ID:
                # A space can never occur inside a whitespace-split word, so these entries never match.
                matcher_vocabulary[index] = f"{vocabulary[index]} (reserved)"
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            matcher_vocabulary,
            suffix_indicator=SUFFIX_INDICATOR,
            max_bytes_per_word=max_bytes_per_word,
            token_out_type=tf.int32,
            unknown_token=UNK,
            no_pretokenization=True,
            support_detokenization=True,
        )

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocabulary)

    @property
    def special_tokens(self) -> list[str]:
        """The special tokens, id = position: the four core ones, then the vocabulary's others."""
        return list(self._special_tokens)

    def special_token_id(self, token: str) -> int:
        """The id of a special token, e.g. `special_token_id("[MASK]")`.

        Raises:
            ValueError: the vocabulary has no such special token.
        """
        if token not in self._special_tokens:
            raise ValueError(
                f"the vocabulary {self._where} has no {token}; retrain it with "
                f"train_wordpiece_vocabulary(..., special_tokens=(..., {token!r})) "
                f"(its special tokens are {list(self._special_tokens)})"
            )
        return self._special_tokens.index(token)

    @property
    def mask_id(self) -> int:
        return self.special_token_id(MASK)

    @property
    def sep_id(self) -> int:
        return self.special_token_id(SEP)

    @property
    def cls_id(self) -> int:
        return self.special_token_id(CLS)

    def normalize(self, strings: tf.Tensor) -> tf.Tensor:
        """See the module-level `normalize`: what `tokenize` does before splitting."""
        return normalize(strings)

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Normalize, split on whitespace and WordPiece-encode a batch of strings.

        Args:
            strings: `[B]` strings (may hold invalid UTF-8).

        Returns:
            `[B, (tokens)]` int32 ragged ids, without [START]/[END]; an empty string gives no tokens.
        """
        return self._wordpiece.tokenize(_words(strings)).merge_dims(-2, -1)

    def tokenize_with_offsets(self, strings: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """Tokenize as `tokenize` does and give each token's span in the original, un-normalized string.

        Spans are byte offsets into each original string (TensorFlow's convention; see
        `byte_spans_to_char_spans` for `str` indices): `original_bytes[start:end]` is the text the token
        came from, for a `##` piece its part of the word without the `##`, for [UNK] the whole word.
        Normalization may change lengths (NFKC turns "ﬁ" into "fi", full-width "Ａ" into "A",
        "A" + U+030A into "Å"; spaces are merged and stripped): the spans still index the original.
        Where a token boundary falls inside what normalization rewrote as one unit (the pieces "f",
        "##i" of the ligature "ﬁ"; the words NFKC makes of "ﷺ"), each token sharing the unit gets all
        of it, so those spans overlap. An invalid UTF-8 sequence, which the tokenizer reads as U+FFFD,
        belongs wholly to the token containing that U+FFFD: spans index the original bytes regardless.

        Args:
            strings: `[B]` strings (may hold invalid UTF-8).

        Returns:
            `(ids, starts, ends)`, each `[B, (tokens)]` ragged: the int32 ids `tokenize` gives and the
            int64 byte offsets of each token's span, `starts <= ends`.
        """
        strings = tf.convert_to_tensor(strings, tf.string)
        repaired = _replace_invalid_utf8(strings)
        normalized, boundaries, sources = _nfkc_with_source_offsets(repaired)
        # The words `tokenize` gets from normalize(): whitespace merging and stripping only separate them.
        words, word_starts, _ = tf_text.regex_split_with_offsets(normalized, _WHITESPACE)
        ids, starts, ends = self._wordpiece.tokenize_with_offsets(words)
        word_start_of_piece = tf.repeat(word_starts.flat_values, ids.values.row_lengths())
        starts = starts.with_flat_values(starts.flat_values + word_start_of_piece).merge_dims(-2, -1)
        ends = ends.with_flat_values(ends.flat_values + word_start_of_piece).merge_dims(-2, -1)
        starts, ends = _map_spans(boundaries, sources, starts, ends)
        starts, ends = _map_spans(*_code_point_offsets(strings, repaired), starts, ends)
        return ids.merge_dims(-2, -1), starts, ends

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """Turn ids back into text.

        Special tokens other than [UNK] ([PAD], [START], [MASK], ...) are dropped wherever they are;
        the first [END] ends the sequence (it and everything after it is dropped, as a decoder stops
        there); [UNK] is written as "[UNK]".

        Args:
            ids: `[B, T]` ids, dense (padded with 0) or ragged, any integer type.

        Returns:
            `[B]` strings: `##` pieces joined to the previous piece, words joined with one space.
        """
        dense = ids.to_tensor(PAD_ID) if isinstance(ids, tf.RaggedTensor) else tf.convert_to_tensor(ids)
        dense = tf.cast(dense, tf.int32)
        before_end = tf.math.cumsum(tf.cast(dense == END_ID, tf.int32), axis=-1) == 0
        # The special tokens hold ids 0 .. len - 1.
        keep = before_end & ((dense >= len(self._special_tokens)) | (dense == UNK_ID))
        return self._wordpiece.detokenize(tf.ragged.boolean_mask(dense, keep))

    def save(self, path: str | os.PathLike) -> None:
        """Save the vocabulary file (one token per line); `SubwordTokenizer.load(path)` restores it."""
        save_vocabulary(self._vocabulary, path)

    @classmethod
    def train(cls, texts: Iterable[str], vocabulary_size: int, special_tokens: Sequence[str] = ()) -> SubwordTokenizer:
        """A tokenizer of a WordPiece vocabulary learned from `texts` (see `train_wordpiece_vocabulary`)."""
        return cls(train_wordpiece_vocabulary(texts, vocabulary_size, special_tokens=special_tokens))

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> SubwordTokenizer:
        """Build a tokenizer from a vocabulary file written by `save` (see `load_vocabulary` for its errors)."""
        return cls(load_vocabulary(path), origin=path, **kwargs)
