"""Cased WordPiece subword tokenizer that runs entirely in the TensorFlow graph.

Design: text is split on whitespace only, never on punctuation, so punctuation attached to a word
stays in its pieces ("shirt." -> "shirt", "##.", or one piece "shirt." if that was learned) and
detokenization is exact: pieces starting
with `##` join the previous piece, words are joined with one space. Hence
`detokenize(tokenize(x)) == normalize(x)` for any text whose characters were seen in training (the
trainer puts every seen character in the vocabulary both as a word start and as a `##` piece, so such
text never needs [UNK]). Nothing is lowercased: the project reports cased sacreBLEU.

The reserved ids are fixed for the whole project: [PAD]=0, [UNK]=1, [START]=2, [END]=3.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

PAD, UNK, START, END = "[PAD]", "[UNK]", "[START]", "[END]"
RESERVED_TOKENS = [PAD, UNK, START, END]
PAD_ID, UNK_ID, START_ID, END_ID = range(len(RESERVED_TOKENS))
SUFFIX_INDICATOR = "##"

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
    strings = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
    strings = tf_text.normalize_utf8(strings, "NFKC")
    return tf.strings.strip(tf.strings.regex_replace(strings, _WHITESPACE, " "))


def _words(strings: tf.Tensor) -> tf.RaggedTensor:
    return tf.strings.split(normalize(strings))


def train_wordpiece_vocabulary(
    texts: Iterable[str], vocabulary_size: int, *, min_frequency: int = 5, batch_size: int = 4096
) -> list[str]:
    """Train a cased WordPiece vocabulary on whitespace-split, normalized text.

    Words are split exactly as `SubwordTokenizer` splits them, then tensorflow-text's WordPiece learner
    (the library behind keras-hub's `compute_word_piece_vocabulary` and tf-text's `bert_vocab` tool)
    learns the pieces. Every character seen in training is put in the vocabulary both as a
    word-initial piece and as a `##` piece, so text made of seen characters never needs [UNK].

    Args:
        texts: training texts (e.g. the train split of one language).
        vocabulary_size: maximum vocabulary size, reserved tokens included.
        min_frequency: pieces seen fewer times are not learned, so a small corpus may give fewer
            than `vocabulary_size` entries (the learner's frequency floor).
        batch_size: texts normalized per TensorFlow call.

    Returns:
        The vocabulary: the four reserved tokens (ids 0-3), the characters, the `##` characters, then
        the learned pieces, most frequent first.

    Raises:
        ValueError: no words in `texts`, or `vocabulary_size` is too small to hold every character twice.

    Example:
        >>> vocabulary = train_wordpiece_vocabulary(["A man in a blue shirt.", "A dog runs."], 100)
        >>> vocabulary[:4]
        ['[PAD]', '[UNK]', '[START]', '[END]']
    """
    word_counts = _count_words(texts, batch_size)
    if not word_counts:
        raise ValueError("cannot train a vocabulary: the texts contain no words")
    characters = sorted(set("".join(word_counts)))
    base = RESERVED_TOKENS + characters + [SUFFIX_INDICATOR + char for char in characters]
    if len(base) > vocabulary_size:
        raise ValueError(
            f"vocabulary_size {vocabulary_size} is too small: the {len(characters)} distinct characters need "
            f"{len(base)} entries (each as a word start and as a ## piece, plus {len(RESERVED_TOKENS)} reserved)"
        )
    taken = set(base)
    learned = [piece for piece in _learn_pieces(word_counts, vocabulary_size, min_frequency) if piece not in taken]
    return base + learned[: vocabulary_size - len(base)]


def _count_words(texts: Iterable[str], batch_size: int) -> Counter[str]:
    counts: Counter[bytes] = Counter()
    for batch in tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)).batch(batch_size):
        counts.update(_words(batch).flat_values.numpy())
    return Counter({word.decode("utf-8"): count for word, count in counts.items()})


def _learn_pieces(word_counts: Counter[str], vocabulary_size: int, min_frequency: int) -> list[str]:
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
        reserved_tokens=RESERVED_TOKENS,
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
    low_size, high_size, fitting = len(pieces), len(RESERVED_TOKENS) + 2 * len(allowed), None
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
    """Read a vocabulary written by `save_vocabulary`."""
    # split("\n"), not splitlines(): tokens may legitimately be characters such as U+001C that
    # splitlines() would treat as line breaks.
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


class SubwordTokenizer(tf.Module):
    """WordPiece tokenizer as a `tf.Module`: normalize, tokenize and detokenize run as TF ops only.

    It holds no Python state used at run time and no untracked resources, so its methods can be
    traced into a `tf.function` and exported in a SavedModel (load it with `import tensorflow_text`
    so the tf.text ops are registered). All methods take a batch: a 1-D string tensor `[B]`.

    Literal text such as "[END]" is tokenized as ordinary characters: the reserved [PAD], [START] and
    [END] entries are hidden from the WordPiece matcher, so user text can never inject control ids.
    Words longer than `max_bytes_per_word` bytes, and words with characters unseen in training,
    become a single [UNK].

    Args:
        vocabulary: tokens, id = position; must start with [PAD], [UNK], [START], [END].
        max_bytes_per_word: longer words map to [UNK].
        name: module name.

    Example:
        >>> tokenizer = SubwordTokenizer(train_wordpiece_vocabulary(["A man in a blue shirt."], 60))
        >>> ids = tokenizer.tokenize(tf.constant(["A blue  shirt."]))
        >>> tokenizer.detokenize(ids).numpy()
        array([b'A blue shirt.'], dtype=object)
    """

    def __init__(self, vocabulary: Sequence[str], *, max_bytes_per_word: int = 100, name: str | None = None) -> None:
        super().__init__(name=name)
        vocabulary = list(vocabulary)
        if vocabulary[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
            raise ValueError(f"the vocabulary must start with {RESERVED_TOKENS}, found {vocabulary[:len(RESERVED_TOKENS)]}")
        duplicates = sorted(token for token, count in Counter(vocabulary).items() if count > 1)
        if duplicates:
            raise ValueError(f"the vocabulary has duplicate tokens: {duplicates[:10]}")
        # A tuple of str is not trackable state: the vocabulary lives in the WordPiece model below.
        self._vocabulary = tuple(vocabulary)
        matcher_vocabulary = list(vocabulary)
        for index in (PAD_ID, START_ID, END_ID):
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

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """Turn ids back into text.

        [PAD] and [START] are dropped wherever they are; the first [END] ends the sequence (it and
        everything after it is dropped, as a decoder stops there); [UNK] is written as "[UNK]".

        Args:
            ids: `[B, T]` ids, dense (padded with 0) or ragged, any integer type.

        Returns:
            `[B]` strings: `##` pieces joined to the previous piece, words joined with one space.
        """
        dense = ids.to_tensor(PAD_ID) if isinstance(ids, tf.RaggedTensor) else tf.convert_to_tensor(ids)
        dense = tf.cast(dense, tf.int32)
        before_end = tf.math.cumsum(tf.cast(dense == END_ID, tf.int32), axis=-1) == 0
        keep = before_end & (dense != PAD_ID) & (dense != START_ID)
        return self._wordpiece.detokenize(tf.ragged.boolean_mask(dense, keep))

    def save(self, path: str | os.PathLike) -> None:
        """Save the vocabulary file (one token per line); `SubwordTokenizer.load(path)` restores it."""
        save_vocabulary(self._vocabulary, path)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> SubwordTokenizer:
        """Build a tokenizer from a vocabulary file written by `save`."""
        return cls(load_vocabulary(path), **kwargs)
