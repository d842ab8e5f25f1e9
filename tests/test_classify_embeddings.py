"""The classify app starting its token embedding from word vectors: `classify train --embeddings PATH`."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from apps.classify import app
from apps.classify.config import ClassifyConfig
from apps.cli import main
from kerasllm.data.tokenizer import load_vocabulary
from kerasllm.data.word_vectors import WordVectors, write_word_vectors

CORPUS = "sms_spam_sample"
# Frequent in the SMS sample, so whole words of any vocabulary learned from it; the last two are in none.
WORDS = "to you the and is in for my of have me your call now free text get will can ok xylophone quixotic".split()


def write_glove(path, dim: int) -> WordVectors:
    vectors = WordVectors(WORDS, np.random.default_rng(dim).normal(size=(len(WORDS), dim)))
    write_word_vectors(vectors, path, "glove")
    return vectors


def expected_rows(vectors: WordVectors, vocabulary: list[str]) -> tuple[dict[int, np.ndarray], list[int]]:
    """Vocabulary row -> the file vector it must start as (its word, or its word in lowercase), and the rows of
    the other tokens that are not special (misses: "##" pieces and words the file lacks)."""
    hits, misses = {}, []
    for row, token in enumerate(vocabulary):
        if token.startswith("[") and token.endswith("]"):
            continue
        word = token if token in vectors else token.lower()
        if word in vectors:
            hits[row] = vectors.vector(word)
        else:
            misses.append(row)
    return hits, misses


def embedding_matrix(run_dir) -> np.ndarray:
    """The token embedding of the run's best checkpoint."""
    return app.load_run(run_dir).model.token_embedding.get_weights()[0]


def run_cli(command: list[str]) -> str:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(command) == 0
    return stdout.getvalue()


def train_command(config: str, out, *options: str) -> list[str]:
    return ["classify", "train", "--corpus", CORPUS, "--config", config, "--out", str(out), *options]


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """One epoch of the tiny BiLSTM through the CLI with frozen vectors: (run directory, vectors, stdout)."""
    root = tmp_path_factory.mktemp("frozen")
    vectors = write_glove(root / "glove.txt", ClassifyConfig.load("tiny_bilstm").embedding_width)
    out = root / "run"
    options = ("--epochs", "1", "--embeddings", str(root / "glove.txt"), "--freeze-embeddings")
    return out, vectors, run_cli(train_command("tiny_bilstm", out, *options))


def test_frozen_vectors_stay_as_read_and_misses_start_at_zeros(frozen):
    out, vectors, stdout = frozen
    hits, misses = expected_rows(vectors, load_vocabulary(out / "vocabulary.vocab"))
    assert len(hits) >= 15 and misses, "the sample's vocabulary has most of the words, and many other tokens"
    matrix = embedding_matrix(out)
    for row, vector in hits.items():
        np.testing.assert_array_equal(matrix[row], vector)
    special = [row for row in range(len(matrix)) if row not in hits and row not in misses]
    assert not matrix[misses + special].any(), "misses (oov zeros) and special tokens stay zeros when frozen"

    record = json.loads((out / "embeddings.json").read_text())
    assert (record["hits"], record["misses"], record["reserved"]) == (len(hits), len(misses), len(special))
    assert (record["dim"], record["words"], record["format"], record["trainable"]) == (
        vectors.dim,
        len(vectors),
        "glove",
        False,
    )
    assert f"Converted {len(hits)} words ({len(misses)} misses)" in stdout
    config = ClassifyConfig.load(out / "config.json")
    assert (config.embeddings_trainable, config.embeddings_oov) == (False, "zeros")
    # The checkpoint's own config keeps it frozen, so it loads with the optimizer state it was saved with.
    assert app.load_run(out).model.token_embedding.trainable is False


def test_a_resume_restores_its_backup_without_reading_the_vectors_again(frozen, tmp_path):
    out, vectors, _ = frozen
    run_dir = shutil.copytree(out, tmp_path / "run")
    (run_dir / "finished.json").unlink()
    # A resume that read the vectors again would fail on this path.
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "embeddings": str(tmp_path / "gone.txt")}))
    stdout = run_cli(train_command(str(run_dir / "config.json"), run_dir, "--epochs", "2"))
    assert "Converted" not in stdout
    assert json.loads((run_dir / "finished.json").read_text())["epochs"] == 2
    hits, _ = expected_rows(vectors, load_vocabulary(run_dir / "vocabulary.vocab"))
    matrix = embedding_matrix(run_dir)
    for row, vector in hits.items():
        np.testing.assert_array_equal(matrix[row], vector, err_msg="a resumed run keeps the embedding frozen")


def test_trainable_vectors_are_the_transformers_start_and_move(tmp_path, capsys):
    config = ClassifyConfig.load("tiny_transformer")
    vectors = write_glove(tmp_path / "glove.txt", config.embedding_width)
    config.epochs, config.time_budget_minutes = 1, None
    config.embeddings, config.embeddings_oov = str(tmp_path / "glove.txt"), "mean"
    app.train(config, tmp_path / "run", corpus=CORPUS, verbose=0)

    hits, misses = expected_rows(vectors, load_vocabulary(tmp_path / "run" / "vocabulary.vocab"))
    matrix = embedding_matrix(tmp_path / "run")
    start = np.stack(list(hits.values()))
    moved = np.abs(matrix[list(hits)] - start)
    # One epoch of Adam steps (about the rate each) moves every hit row, but not far from its vector.
    assert moved.max() > 0 and moved.max() < 0.5 and (moved.max(axis=1) > 0).all()
    assert np.abs(matrix[misses] - vectors.vectors.mean(axis=0)).max() < 0.5, "misses start at the mean vector"
    record = json.loads((tmp_path / "run" / "embeddings.json").read_text())
    assert (record["hits"], record["misses"], record["oov"], record["trainable"]) == (
        len(hits),
        len(misses),
        "mean",
        True,
    )
    assert f"Converted {len(hits)} words ({len(misses)} misses)" in capsys.readouterr().out


def test_vectors_of_another_dim_are_one_line_before_anything_is_written(tmp_path, capsys):
    write_glove(tmp_path / "glove.txt", 8)
    out = tmp_path / "run"
    command = train_command("tiny_transformer", out, "--embeddings", str(tmp_path / "glove.txt"))
    assert main(command) == 2
    error = capsys.readouterr().err
    width = ClassifyConfig.load("tiny_transformer").embedding_width
    assert f"holds vectors of dim 8, but the transformer model's token embedding is {width} wide" in error
    assert "set model_args.hidden_dim" in error and error.count("\n") == 1 and "Traceback" not in error
    assert not out.exists()


@pytest.mark.parametrize(
    "content, error, message",
    [
        (None, FileNotFoundError, "missing.txt does not exist"),
        ("to 0.1 0.2\nyou 0.3\n", ValueError, "missing.txt line 2: 1 values, expected 2"),
    ],
    ids=["missing", "damaged"],
)
def test_a_missing_or_damaged_file_fails_before_anything_is_written(tmp_path, content, error, message):
    path = tmp_path / "missing.txt"
    if content is not None:
        path.write_text(content)
    config = ClassifyConfig.load("tiny_bilstm")
    config.embeddings = str(path)
    with pytest.raises(error, match=message):
        app.train(config, tmp_path / "run", corpus=CORPUS, verbose=0)
    assert not (tmp_path / "run").exists()


def test_vectors_and_init_from_are_refused_together(tmp_path):
    config = ClassifyConfig.load("tiny_bilstm")
    config.embeddings = str(tmp_path / "glove.txt")
    with pytest.raises(ValueError, match="both give the token embedding its start: use one of them"):
        app.train(config, tmp_path / "run", corpus=CORPUS, init_from=tmp_path / "pretrained", verbose=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--freeze-embeddings"], "embeddings_trainable and embeddings_oov apply to pretrained vectors"),
        (["--oov", "mean"], "embeddings_trainable and embeddings_oov apply to pretrained vectors"),
        (["--embeddings", ""], "embeddings must be the path of a word-vector file"),
    ],
)
def test_vector_options_are_checked_before_anything_is_written(tmp_path, capsys, options, message):
    out = tmp_path / "run"
    assert main(train_command("tiny_bilstm", out, *options)) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"embeddings": "v.txt", "embeddings_oov": "nearest"}, "embeddings_oov must be one of"),
        ({"embeddings": 3}, "embeddings must be a string or null"),
        ({"embeddings": "v.txt", "embeddings_trainable": "no"}, "embeddings_trainable must be true or false"),
    ],
)
def test_config_vector_settings_are_checked_on_load(values, message):
    with pytest.raises(ValueError, match=message):
        ClassifyConfig.from_dict({"model": "rnn", **values}, where="my.json")
