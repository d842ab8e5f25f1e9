"""The word2vec app end to end on the embedded Tatoeba English side: --quick (train → evaluate → vector files →
export → verify → serve), the SavedModel's defined answers, resume, and the CLI's one-line errors."""

from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np
import pytest
import tensorflow as tf

from apps.cli import main
from apps.word2vec import app
from apps.word2vec.config import Word2VecConfig
from kerasllm.data.word_vectors import read_word_vectors


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """`kerasllm word2vec --quick` once: (its printed output, run directory, exported version directory)."""
    root = tmp_path_factory.mktemp("word2vec-quick")
    out = io.StringIO()
    stdout, sys.stdout = sys.stdout, out
    try:
        assert main(["word2vec", "--quick", "--out", str(root / "run"), "--base", str(root / "saved")]) == 0
    finally:
        sys.stdout = stdout
    return out.getvalue(), root / "run", root / "saved" / "1"


@pytest.fixture(scope="module")
def serve(quick):
    loaded = tf.saved_model.load(str(quick[2]))
    signature = loaded.signatures["serving_default"]

    def call(words):
        outputs = signature(word=tf.constant(words, tf.string))
        return {key: value.numpy() for key, value in outputs.items()}

    call.loaded = loaded  # keep the variables alive
    return call


def test_quick_trains_scores_writes_exports_verifies_and_serves(quick):
    printed, run_dir, version_dir = quick
    assert "read back exactly" in printed and ": OK" in printed and "4/4 neighbours through the SavedModel" in printed
    scores = json.loads((run_dir / "eval_benchmarks.json").read_text())
    assert set(scores) == {"wordsim353", "simlex999", "analogies"}
    assert 0 < scores["simlex999"]["used"] <= scores["simlex999"]["total"] == 999
    with open(run_dir / "history.csv") as file:
        losses = [float(row["loss"]) for row in csv.DictReader(file)]
    assert losses[-1] < losses[0]
    assert (version_dir / "saved_model.pb").exists()


def test_saved_model_neighbours_match_the_vectors_and_odd_input_is_defined(quick, serve):
    vectors = app.load_vectors(quick[1])
    word = vectors.words[5]
    outputs = serve([word.upper(), "", "  ", "qwertyuiop", b"\xff\xfe"])
    assert outputs["known"].tolist() == [True, False, False, False, False]
    expected = [neighbour for neighbour, _ in vectors.most_similar(word, topn=10)]
    assert [n.decode() for n in outputs["neighbours"][0]] == expected
    np.testing.assert_allclose(outputs["vector"][0], vectors.vector(word))
    assert np.all(outputs["scores"][1:] == 0) and np.all(outputs["neighbours"][1:] == b"")
    # An empty input gives the same answer alone as in a batch.
    alone = serve([""])
    for key in alone:
        np.testing.assert_array_equal(alone[key][0], outputs[key][1])


def test_vector_files_in_every_format_read_back(quick, tmp_path):
    vectors = app.load_vectors(quick[1])
    for file_format in ("glove", "word2vec", "word2vec-binary"):
        path = app.export_vectors(quick[1], tmp_path / f"v.{file_format}", file_format)
        read = read_word_vectors(path, file_format)
        assert read.words == vectors.words and np.array_equal(read.vectors, vectors.vectors)
    folder = app.export_vectors(quick[1], tmp_path / "projector", "projector")
    assert len((folder / "metadata.tsv").read_text(encoding="utf-8").splitlines()) == len(vectors)


def test_cli_neighbours_and_analogy(quick, capsys):
    run_dir = str(quick[1])
    words = app.load_vectors(quick[1]).words
    assert main(["word2vec", "neighbours", "--out", run_dir, words[3], "zzzz", "--topn", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{words[3]}: ") and printed[0].count(",") == 2
    assert printed[1] == "zzzz: not in the vocabulary"
    assert main(["word2vec", "neighbours", "--out", run_dir, "--analogy", *words[:3]]) == 0
    assert capsys.readouterr().out.startswith(f"{words[0]} : {words[1]} :: {words[2]} : ? ")


def test_a_finished_run_is_not_trained_again(quick, capsys):
    run_dir = quick[1]
    assert app.train(Word2VecConfig.load("tiny"), run_dir, corpus="sample") is None
    assert "holds a finished run" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["neighbours", "--out", "{run}"], "give words to look up"),
        (["neighbours", "--out", "{run}", "--analogy", "zzzz", "a", "b"], "not in the vocabulary: zzzz"),
        (["export", "--out", "{run}", "--format", "glove"], "--format needs --path"),
        (["export", "--out", "{run}", "--format", "csv", "--path", "x"], "format must be one of"),
        (["train", "--config", "tiny", "--out", "{tmp}/r", "--corpus", "{tmp}/missing.txt"], "missing.txt"),
        (["evaluate", "--out", "{tmp}/none"], "holds no run"),
    ],
)
def test_cli_errors_are_one_line(quick, tmp_path, capsys, arguments, message):
    arguments = [a.format(run=quick[1], tmp=tmp_path) for a in arguments]
    assert main(["word2vec", *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_config_errors_are_one_line(tmp_path, capsys):
    for values, message in (
        ({"window": "5"}, "window must be"),
        ({"architecture": "glove"}, "architecture must be one of"),
        ({"subsample": 2.0}, "subsample must be in"),
        ({"steps_per_epoch": 10}, "steps_per_epoch is set by the corpus"),
    ):
        config = tmp_path / "config.json"
        config.write_text(json.dumps(values))
        assert (
            main(["word2vec", "train", "--config", str(config), "--out", str(tmp_path / "r"), "--corpus", "sample"])
            == 2
        )
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_empty_corpus_file_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("\n\n")
    arguments = ["word2vec", "train", "--config", "tiny", "--out", str(tmp_path / "r"), "--corpus"]
    assert main([*arguments, str(tmp_path / "empty.txt")]) == 2
    assert "holds no text" in capsys.readouterr().err
