"""Word vector files against gensim, exact round trips, every kind of bad input, aligned matrices and
projector files. No TensorFlow needed."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from kerasllm.data.word_vectors import (
    FORMATS,
    WordVectors,
    aligned_matrix,
    read_word_vectors,
    write_projector,
    write_word_vectors,
)

GLOVE = datapath("test_glove.txt")
# Awkward values: subnormal, huge, negative zero, float32 values whose float64 repr is long.
AWKWARD = np.array([[1e-45, -3.4028235e38, -0.0], [0.1, 1 / 3, 2.5e-8]], np.float32)


def write(path, data: bytes | str, compress: bool = False):
    data = data.encode("utf-8") if isinstance(data, str) else data
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture(scope="module")
def glove() -> WordVectors:
    return read_word_vectors(GLOVE)


@pytest.fixture(scope="module")
def gensim_glove() -> KeyedVectors:
    return KeyedVectors.load_word2vec_format(GLOVE, no_header=True)


@pytest.fixture(params=[False, True], ids=["plain", "gzip"])
def compress(request) -> bool:
    return request.param


def random_vectors(words: list[str], dim: int = 7, seed: int = 0) -> WordVectors:
    rng = np.random.default_rng(seed)
    return WordVectors(words, rng.standard_normal((len(words), dim)).astype(np.float32) * 10.0 ** rng.integers(-8, 8))


def test_glove_matches_gensim(glove, gensim_glove):
    assert glove.words == gensim_glove.index_to_key
    assert np.array_equal(glove.vectors, gensim_glove.vectors)
    assert any(not word.isascii() for word in glove.words)
    assert (glove.report.format, glove.report.read, glove.report.kept) == ("glove", 76, 76)


def test_most_similar_matches_gensim(glove, gensim_glove):
    ours = glove.most_similar("the", topn=5)
    theirs = gensim_glove.most_similar("the", topn=5)
    assert [word for word, _ in ours] == [word for word, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)
    query = glove.vector("the") + glove.vector("which")
    by_vector = glove.most_similar(query, topn=3, exclude=["the"])
    assert "the" not in [word for word, _ in by_vector]
    assert [w for w, _ in by_vector] == [w for w, _ in gensim_glove.similar_by_vector(query, topn=4) if w != "the"][:3]


@pytest.mark.parametrize("format", FORMATS)
def test_each_format_round_trips_exactly(tmp_path, format, compress, glove):
    words = [*glove.words[:5], "naïve", "東京", "Ünïcödé-𝔴𝔬𝔯𝔡", "x"]
    vectors = WordVectors(words, np.vstack([glove.vectors[:5, :3], AWKWARD, [[7.0, -8.0, 1e30]], [[0, 0, 0]]]))
    path = tmp_path / ("vectors.txt.gz" if compress else "vectors.txt")
    write_word_vectors(vectors, path, format)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    for read_format in (format, "auto"):
        back = read_word_vectors(path, read_format)
        assert back.words == vectors.words and back.report.format == format
        assert np.array_equal(back.vectors, vectors.vectors)
        assert np.array_equal(np.signbit(back.vectors), np.signbit(vectors.vectors))


def test_text_values_are_shortest_float32_form(tmp_path):
    path = tmp_path / "a.txt"
    write_word_vectors(WordVectors(["a"], [[0.1, 2.0, 1e-30]]), path, "glove")
    assert path.read_text() == "a 0.1 2.0 1e-30\n"


def test_many_random_float32_values_round_trip_through_text(tmp_path):
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**32, size=(500, 40), dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values[~np.isfinite(values)] = 1.0
    vectors = WordVectors([f"w{i}" for i in range(500)], values)
    write_word_vectors(vectors, tmp_path / "r.txt", "word2vec")
    assert np.array_equal(read_word_vectors(tmp_path / "r.txt").vectors.view(np.uint32), values.view(np.uint32))


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_gensim_reads_what_we_write(tmp_path, binary):
    vectors = random_vectors(["the", "naïve", "東京", "b"])
    path = tmp_path / "ours.w2v"
    write_word_vectors(vectors, path, "word2vec-binary" if binary else "word2vec")
    theirs = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert theirs.index_to_key == vectors.words
    assert np.array_equal(theirs.vectors, vectors.vectors)


@pytest.mark.parametrize("name", ["gensim.bin", "gensim.vectors"])
def test_we_read_what_gensim_writes(tmp_path, gensim_glove, name):
    binary = tmp_path / name
    gensim_glove.save_word2vec_format(str(binary), binary=True)
    text = tmp_path / "gensim.txt"
    gensim_glove.save_word2vec_format(str(text), binary=False)
    for path, format in ((binary, "word2vec-binary"), (text, "word2vec")):
        ours = read_word_vectors(path)
        assert ours.report.format == format
        assert ours.words == gensim_glove.index_to_key
        assert np.array_equal(ours.vectors, gensim_glove.vectors)


def test_binary_records_with_and_without_newline(tmp_path):
    vector = np.array([0.5, -1.0], "<f4").tobytes()
    mikolov = b"2 2\n" + b"a " + vector + b"\n" + b"b " + vector + b"\n"
    gensim = b"2 2\n" + b"a " + vector + b"b " + vector
    for data in (mikolov, gensim):
        read = read_word_vectors(write(tmp_path / "v.bin", data))
        assert read.words == ["a", "b"] and read.vectors.tolist() == [[0.5, -1.0], [0.5, -1.0]]


def test_blank_lines_and_byte_order_mark_are_not_vectors(tmp_path):
    read = read_word_vectors(write(tmp_path / "v.txt", "\ufeffa 1 2\n\nb 3 4\n  \n"))
    assert read.words == ["a", "b"] and read.report.read == 2


@pytest.mark.parametrize(
    ("data", "format", "message"),
    [
        ("a 1 2\nb 1 2 3\n", "glove", r"v\.txt line 2: 3 values, expected 2 as on line 1"),
        ("2 3\na 1 2 3\nb 1 2\n", "word2vec", r"v\.txt line 3: 2 values, expected 3 as on the header's dim \(line 1\)"),
        ("a 1 2\nb 1 x\n", "glove", r"v\.txt line 2: value 2 \('x'\) is not a number"),
        ("a 1 2\nb 1 1e99\n", "glove", r"v\.txt line 2: the vector of 'b' holds a value that is not a finite number"),
        (
            "a 1 2\nb 1 2\na 3 4\n",
            "glove",
            r"v\.txt line 3: duplicate word 'a' \(first on line 1\).*duplicates='first'",
        ),
        ("3 2\na 1 2\nb 1 2\n", "word2vec", r"v\.txt: the header \(line 1\) declares 3 vectors but the file has 2"),
        ("1 2\na 1 2\nb 1 2\n", "word2vec", r"v\.txt line 3: more vectors than the 1 that the header \(line 1\)"),
        (
            "a 1 2\nb 1 2\n",
            "word2vec",
            r"v\.txt line 1: expected the word2vec header 'count dim', found 'a 1 2'.*format='glove'",
        ),
        ("2 2\na 1 2\nb 1 2\n", "glove", r"v\.txt line 2: 2 values, expected 1 as on line 1; .*format='word2vec'"),
        (
            b"a 1 2\ncaf\xe9 1 2\n",
            "glove",
            r"v\.txt line 2: the word b'caf\\xe9' is not valid UTF-8; pass errors='replace'",
        ),
        ("", "auto", r"v\.txt is empty"),
        ("\n\n", "glove", r"v\.txt has only blank lines"),
        ("a\n", "glove", r"v\.txt line 1: the word 'a' has no values"),
        ("2 0\n", "word2vec", r"v\.txt line 1: the header declares vectors of dim 0"),
    ],
    ids=[
        "values-vs-first",
        "values-vs-header",
        "not-a-number",
        "not-finite",
        "duplicate",
        "fewer-than-header",
        "more-than-header",
        "no-header",
        "glove-given-header",
        "invalid-utf8",
        "empty",
        "blank",
        "no-values",
        "dim-0",
    ],
)
def test_bad_text_input_names_file_and_line(tmp_path, compress, data, format, message):
    path = write(tmp_path / "v.txt", data, compress)
    with pytest.raises(ValueError, match=message):
        read_word_vectors(path, format)


def test_bad_binary_input_names_file_and_record(tmp_path):
    vector = np.array([0.5, -1.0], "<f4").tobytes()
    cases = {
        b"3 2\na " + vector + b"b " + vector: r"v\.bin record 3 \(byte \d+\): the file ends after 2 of the 3 vectors",
        b"1 2\na " + vector + b"b " + vector: r"v\.bin byte 14: more data after the 1 vectors",
        b"2 2\na " + vector + b"a " + vector: r"v\.bin record 2: duplicate word 'a' \(first on record 1\)",
        b"1 2\n\xff\xfe " + vector: r"v\.bin record 1: the word b'\\xff\\xfe' is not valid UTF-8",
        b"a " + vector: r"v\.bin line 1: expected the word2vec-binary header",
    }
    for data, message in cases.items():
        with pytest.raises(ValueError, match=message):
            read_word_vectors(write(tmp_path / "v.bin", data), "word2vec-binary")


def test_missing_file_names_the_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere.txt"))):
        read_word_vectors("nowhere.txt")


def test_unknown_options_are_errors(tmp_path):
    path = write(tmp_path / "v.txt", "a 1\n")
    for options, name in (({"format": "fasttext"}, "format"), ({"duplicates": "all"}, "duplicates")):
        with pytest.raises(ValueError, match=f"unknown {name}"):
            read_word_vectors(path, **options)


def test_duplicates_first_and_last_keep_one_and_count(tmp_path):
    path = write(tmp_path / "v.txt", "a 1 1\nb 2 2\na 3 3\na 4 4\n")
    first = read_word_vectors(path, duplicates="first")
    last = read_word_vectors(path, duplicates="last")
    assert first.words == last.words == ["a", "b"]
    assert first.vectors.tolist() == [[1, 1], [2, 2]] and last.vectors.tolist() == [[4, 4], [2, 2]]
    assert (first.report.read, first.report.skipped_duplicates, first.report.kept) == (4, 2, 2)


def test_invalid_utf8_replaced_on_request(tmp_path):
    read = read_word_vectors(write(tmp_path / "v.txt", b"caf\xe9 1 2\nok 3 4\n"), errors="replace")
    assert read.words == ["caf\ufffd", "ok"] and read.report.replaced_utf8 == 1


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("word", ["two words", "tab\there", "line\nbreak", ""])
def test_words_with_separators_cannot_be_written(tmp_path, format, word):
    with pytest.raises(ValueError, match=f"cannot write the word {re.escape(repr(word))} \\(row 1\\) in {format}"):
        write_word_vectors(WordVectors(["ok", word], np.ones((2, 2))), tmp_path / "v", format)


def test_word_vectors_validation():
    with pytest.raises(ValueError, match="duplicate word 'a' at rows 0 and 2"):
        WordVectors(["a", "b", "a"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2 words but 3 vector rows"):
        WordVectors(["a", "b"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        WordVectors(["a", "b"], np.zeros(2))
    with pytest.raises(ValueError, match=r"'b' \(row 1\) holds a value that is not finite"):
        WordVectors(["a", "b"], [[0.0], [np.nan]])


def test_word_vectors_lookups_and_normalized():
    vectors = WordVectors(["a", "b", "zero"], [[3.0, 4.0], [0.0, -2.0], [0.0, 0.0]])
    assert vectors.vectors.dtype == np.float32 and (len(vectors), vectors.dim) == (3, 2)
    assert dict(vectors.index) == {"a": 0, "b": 1, "zero": 2} and "b" in vectors and "c" not in vectors
    assert vectors.vector("b").tolist() == [0.0, -2.0]
    with pytest.raises(KeyError, match="'c' is not one of the 3 words"):
        vectors.vector("c")
    np.testing.assert_allclose(vectors.normalized().vectors, [[0.6, 0.8], [0.0, -1.0], [0.0, 0.0]], rtol=1e-6)
    assert vectors.most_similar("a") == [("zero", 0.0), ("b", pytest.approx(-0.8))]
    assert vectors.most_similar("a", topn=1, exclude=["zero"]) == [("b", pytest.approx(-0.8))]
    with pytest.raises(ValueError, match="all zeros"):
        vectors.most_similar("zero")
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
        vectors.most_similar([1.0, 2.0, 3.0])


def test_aligned_matrix_hits_misses_and_reserved(glove):
    vocabulary = ["[PAD]", "[UNK]", "the", "The", "notaword1", "which", "notaword2", ""]
    matrix, report = aligned_matrix(glove, vocabulary)
    assert matrix.shape == (8, glove.dim) and matrix.dtype == np.float32
    assert np.array_equal(matrix[2], glove.vector("the")) and np.array_equal(matrix[3], glove.vector("the"))
    assert np.array_equal(matrix[5], glove.vector("which"))
    assert not matrix[[0, 1, 4, 6, 7]].any()
    assert (report.hits, report.lowercase_hits, report.misses, report.reserved) == (3, 1, 2, 3)
    assert report.example_misses == ["notaword1", "notaword2"]
    assert str(report).startswith("Converted 3 words (2 misses)")
    _, exact = aligned_matrix(glove, vocabulary, lowercase_fallback=False)
    assert (exact.hits, exact.misses) == (2, 3)


def test_aligned_matrix_oov_modes(glove):
    vocabulary = ["[PAD]", "the", "missing", "alsomissing"]
    mean, _ = aligned_matrix(glove, vocabulary, oov="mean")
    np.testing.assert_array_equal(mean[2], glove.vectors.mean(axis=0))
    np.testing.assert_array_equal(mean[3], glove.vectors.mean(axis=0))
    assert not mean[0].any() and np.array_equal(mean[1], glove.vector("the"))
    random, _ = aligned_matrix(glove, vocabulary, oov="random", seed=3)
    again, _ = aligned_matrix(glove, vocabulary, oov="random", seed=3)
    other, _ = aligned_matrix(glove, vocabulary, oov="random", seed=4)
    assert random.shape == (4, glove.dim) and np.array_equal(random, again) and not np.array_equal(random, other)
    assert not random[0].any() and np.array_equal(random[1], glove.vector("the"))
    assert not np.array_equal(random[2], random[3])
    big, _ = aligned_matrix(glove, [f"missing{i}" for i in range(200)], oov="random")
    assert big.std() == pytest.approx(glove.vectors.std(), rel=0.05)
    with pytest.raises(ValueError, match="unknown oov 'unk'"):
        aligned_matrix(glove, vocabulary, oov="unk")
    with pytest.raises(ValueError, match="oov='mean' needs statistics"):
        aligned_matrix(WordVectors([], np.zeros((0, 3))), vocabulary, oov="mean")


def test_projector_files(tmp_path, glove):
    vectors = WordVectors([*glove.words[:4], "tab\tand\nnewline"], glove.vectors[:5])
    directory = write_projector(vectors, tmp_path / "projector")
    rows = (directory / "vectors.tsv").read_text(encoding="utf-8").splitlines()
    metadata = (directory / "metadata.tsv").read_text(encoding="utf-8").split("\n")
    assert len(rows) == 5 and metadata == [*glove.words[:4], "tab and newline", ""]
    assert np.array_equal(np.array([row.split("\t") for row in rows], dtype=np.float32), vectors.vectors)
    config = (directory / "projector_config.pbtxt").read_text()
    assert re.search(r'embeddings \{\s*tensor_path: "vectors.tsv"\s*metadata_path: "metadata.tsv"\s*\}', config)
