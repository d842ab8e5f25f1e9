"""Character-level tokenizer that runs entirely in the TensorFlow graph: one id per Unicode character.

The character models of the generate app (tiny Shakespeare's 65 symbols, as in nanoGPT) read text exactly as it
is: no normalization, whitespace and line breaks kept, so `detokenize(tokenize(x)) == x` for any text whose
characters are in the vocabulary. Ids are the project's: [PAD]=0, [UNK]=1, [START]=2, [END]=3, then the
characters. Invalid UTF-8 becomes U+FFFD (then [UNK] unless U+FFFD is in the vocabulary); a character outside the
vocabulary becomes [UNK], which detokenizes as "[UNK]".

Lookup is a gather into a dense code-point table rather than a `tf.lookup` hash table: a SavedModel then holds no
table resource to initialise, only constants.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from kerasllm.data.tokenizer import END_ID, PAD_ID, RESERVED_TOKENS, UNK, UNK_ID, CoreTokenIds


def train_character_vocabulary(texts: Iterable[str], vocabulary_size: int) -> list[str]:
    """The core tokens, then the `vocabulary_size - 4` most frequent characters of `texts` (ties by code point).

    Raises:
        ValueError: the texts hold no character.
    """
    counts = Counter()
    for text in texts:
        counts.update(text)
    if not counts:
        raise ValueError("no characters to learn a vocabulary from: the training texts are empty")
    kept = sorted(counts, key=lambda char: (-counts[char], char))[: max(vocabulary_size - len(RESERVED_TOKENS), 0)]
    return RESERVED_TOKENS + sorted(kept)


class CharacterTokenizer(CoreTokenIds, tf.Module):
    """Characters ↔ ids as a `tf.Module` (graph ops only), with `SubwordTokenizer`'s interface.

    Args:
        vocabulary: tokens, id = position: the four core tokens, then single characters.
        origin: where the vocabulary came from, named in error messages.
        name: module name.

    Example:
        >>> tokenizer = CharacterTokenizer(train_character_vocabulary(["To be, or not to be"], 100))
        >>> tokenizer.detokenize(tokenizer.tokenize(tf.constant(["not to be"]))).numpy()
        array([b'not to be'], dtype=object)
    """

    def __init__(self, vocabulary: Sequence[str], *, origin: str | os.PathLike | None = None, name: str | None = None):
        super().__init__(name=name)
        vocabulary = list(vocabulary)
        where = str(origin) if origin is not None else f"of {len(vocabulary)} tokens given to CharacterTokenizer"
        if vocabulary[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
            raise ValueError(f"the vocabulary {where} must start with {RESERVED_TOKENS}")
        characters = vocabulary[len(RESERVED_TOKENS) :]
        bad = [token for token in characters if len(token) != 1]
        if bad:
            raise ValueError(f"the vocabulary {where} holds entries that are not single characters: {bad[:5]}")
        if len(set(characters)) != len(characters):
            raise ValueError(f"the vocabulary {where} has duplicate characters")
        self._vocabulary = tuple(vocabulary)
        code_points = [ord(char) for char in characters]
        # table[c] is the id of code point c; one extra last entry, [UNK], catches every code point beyond.
        table = np.full(max(code_points, default=0) + 2, UNK_ID, np.int32)
        table[code_points] = np.arange(len(RESERVED_TOKENS), len(vocabulary), dtype=np.int32)
        self._ids = tf.constant(table)
        self._strings = tf.constant(["", UNK, "", ""] + characters, tf.string)

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocabulary)

    @property
    def special_tokens(self) -> list[str]:
        return list(RESERVED_TOKENS)

    def token_id(self, character: str) -> int:
        """The id of one character ([UNK]'s when it is not in the vocabulary)."""
        return self._vocabulary.index(character) if character in self._vocabulary[len(RESERVED_TOKENS) :] else UNK_ID

    def normalize(self, strings: tf.Tensor) -> tf.Tensor:
        """Only invalid UTF-8 is repaired (to U+FFFD): a character model reads text as it is."""
        return tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """`[B]` strings → `[B, (characters)]` int32 ids, without [START]/[END]."""
        code_points = tf.strings.unicode_decode(strings, "UTF-8", errors="replace", replacement_char=0xFFFD)
        limit = tf.shape(self._ids, out_type=tf.int32)[0] - 1
        return tf.ragged.map_flat_values(lambda points: tf.gather(self._ids, tf.minimum(points, limit)), code_points)

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """`[B, T]` ids (dense, padded with 0, or ragged) → `[B]` strings: the first [END] ends a row, the other
        special tokens but [UNK] are dropped, [UNK] is written "[UNK]"."""
        dense = ids.to_tensor(PAD_ID) if isinstance(ids, tf.RaggedTensor) else tf.convert_to_tensor(ids)
        dense = tf.cast(dense, tf.int32)
        before_end = tf.math.cumsum(tf.cast(dense == END_ID, tf.int32), axis=-1) == 0
        in_range = (dense >= 0) & (dense < self.vocabulary_size)
        kept = tf.ragged.boolean_mask(dense, before_end & in_range)
        return tf.strings.reduce_join(tf.gather(self._strings, kept), axis=-1)

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as a JSON list (a line per token cannot hold the line-break character)."""
        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.vocabulary, file, ensure_ascii=False)
            file.write("\n")

    @classmethod
    def train(
        cls, texts: Iterable[str], vocabulary_size: int, special_tokens: Sequence[str] = ()
    ) -> CharacterTokenizer:
        """A tokenizer of the most frequent characters of `texts` (`special_tokens` beyond the core: none allowed)."""
        if special_tokens:
            raise ValueError(f"a character vocabulary has only the core special tokens, not {list(special_tokens)}")
        return cls(train_character_vocabulary(texts, vocabulary_size))

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharacterTokenizer:
        """A tokenizer from a file written by `save`, with one clear line for a missing or damaged file."""
        try:
            with open(path, encoding="utf-8") as file:
                vocabulary = json.load(file)
        except FileNotFoundError:
            raise FileNotFoundError(f"no character vocabulary at {path}") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"{path} is not a character vocabulary (a JSON list of tokens): is it damaged?") from None
        if not isinstance(vocabulary, list) or not all(isinstance(token, str) for token in vocabulary):
            raise ValueError(f"{path} is not a character vocabulary (a JSON list of tokens)")
        return cls(vocabulary, origin=path)
