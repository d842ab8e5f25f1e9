"""The generate app end to end on the embedded Tatoeba English side: --quick (train → evaluate → sample → export →
verify → serve), the in-process generator and its stream, the SavedModel's defined answers, and the CLI."""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pytest
import tensorflow as tf

from apps.cli import main
from apps.generate import app
from apps.generate.config import GenerateConfig

CORPUS = "tatoeba_en"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """`kerasllm generate --quick` once: (its printed output, run directory, exported version directory)."""
    root = tmp_path_factory.mktemp("generate-quick")
    out = io.StringIO()
    stdout, sys.stdout = sys.stdout, out
    try:
        assert main(["generate", "--quick", "--out", str(root / "run"), "--base", str(root / "saved")]) == 0
    finally:
        sys.stdout = stdout
    return out.getvalue(), root / "run", root / "saved" / "1"


@pytest.fixture(scope="module")
def generator(quick):
    return app.Generator(app.load_run(quick[1]))


@pytest.fixture(scope="module")
def serve(quick):
    loaded = tf.saved_model.load(str(quick[2]))
    serve = loaded.signatures["serving_default"]
    serve.loaded = loaded  # keep the variables alive

    def call(prompts, max_new_tokens=30, temperature=0.8, top_k=0, top_p=1.0, seed=1):
        n = len(prompts)
        outputs = serve(
            prompt=tf.constant(prompts, tf.string),
            max_new_tokens=tf.constant(
                [max_new_tokens] * n if np.isscalar(max_new_tokens) else max_new_tokens, tf.int32
            ),
            temperature=tf.constant([temperature] * n, tf.float32),
            top_k=tf.constant([top_k] * n, tf.int32),
            top_p=tf.constant([top_p] * n, tf.float32),
            seed=tf.constant([seed] * n if np.isscalar(seed) else seed, tf.int32),
        )
        return {key: value.numpy() for key, value in outputs.items()}

    return call


def test_quick_trains_scores_exports_verifies_and_samples(quick):
    printed, run_dir, version_dir = quick
    assert "4/4 sample through the SavedModel" in printed and "SavedModel" in printed and ": OK" in printed

    scores = json.loads((run_dir / "eval_val.json").read_text())
    assert scores["loss_nats_per_token"] < math.log(scores["perplexity"]) + 1e-3
    # Characters: bits per character is nats per token over ln 2; trained, it beats a uniform guess by far.
    assert scores["bits_per_character"] == pytest.approx(scores["loss_nats_per_token"] / math.log(2), abs=1e-3)
    assert scores["loss_nats_per_token"] < math.log(60) - 1.0
    assert (version_dir / "saved_model.pb").exists()


def test_same_seed_same_text_and_the_stream_draws_the_same_tokens(generator):
    options = dict(max_new_tokens=30, temperature=0.9, top_k=20, seed=5)
    first = generator(["Tom ", "She "], **options)
    assert first == generator(["Tom ", "She "], **options)
    assert first[0]["text"] != generator(["Tom "], **{**options, "seed": 6})[0]["text"]
    streamed = "".join(generator.stream("Tom ", **options))
    assert streamed == generator(["Tom "], **options)[0]["text"]
    assert (
        "".join(generator.stream("", greedy=True, max_new_tokens=20))
        == generator([""], greedy=True, max_new_tokens=20)[0]["text"]
    )


def test_generator_refuses_settings_a_cli_should_refuse(generator):
    for options, message in [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 10_000}, "max_new_tokens"),
        ({"temperature": 0.0}, "--greedy"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
    ]:
        with pytest.raises(ValueError, match=message):
            generator(["Tom "], **{"max_new_tokens": 20, **options})


def test_saved_model_answers_alike_alone_and_in_any_batch(serve):
    prompts = ["Tom ", "", "I think that ", ""]
    batch = serve(prompts, seed=[3, 3, 4, 9])
    for row, (prompt, seed) in enumerate(zip(prompts, [3, 3, 4, 9])):
        alone = serve([prompt], seed=seed)
        assert alone["text"][0] == batch["text"][row]
    assert batch["text"][1] != batch["text"][3]  # another seed, another text
    assert all(batch["new_tokens"] > 0)


def test_saved_model_greedy_equals_the_in_process_generator(serve, generator):
    served = serve(["Tom ", ""], temperature=0.0, max_new_tokens=25)
    local = generator(["Tom ", ""], greedy=True, max_new_tokens=25)
    assert [text.decode() for text in served["text"]] == [row["text"] for row in local]


def test_saved_model_defines_every_odd_value(serve, generator):
    context = generator.context
    long_prompt = "a" * 10_000 + " the end."
    out = serve([long_prompt, "Tom ", "Tom ", "Tom ", b"caf\xc3 \xff"], max_new_tokens=[10, 0, -5, 10_000, 10])
    assert out["truncated"].tolist() == [True, False, False, True, False]
    kept = out["prompt"][0].decode()
    assert long_prompt.endswith(kept) and len(kept) == context - 1 - 10
    assert out["text"][1] == b"" and out["text"][2] == b"" and out["new_tokens"][1:3].tolist() == [0, 0]
    assert out["new_tokens"][3] == context - 1  # clamped to the context: only the start token is read
    assert out["prompt"][3] == b""  # the whole context goes to the continuation
    assert "[UNK]" in out["prompt"][4].decode()  # invalid UTF-8 replaced, then outside the vocabulary
    greedy = serve(["Tom "], temperature=0.0)["text"][0]
    assert serve(["Tom "], temperature=-1.0)["text"][0] == greedy
    assert serve(["Tom "], top_k=1)["text"][0] == greedy
    assert serve(["Tom "], top_p=0.0)["text"][0] == greedy
    assert serve([], max_new_tokens=[])["text"].shape == (0,)


def test_cli_sample_streams_from_a_run_and_reads_stdin(quick, monkeypatch, capsys):
    run_dir = str(quick[1])
    assert main(["generate", "sample", "--out", run_dir, "Tom ", "--max-new-tokens", "20", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    expected = app.Generator(app.load_run(run_dir))(["Tom "], max_new_tokens=20, temperature=0.8, seed=2)[0]["text"]
    assert printed == "Tom " + expected + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"She \xff")))
    assert main(["generate", "sample", "--saved-model", str(quick[2]), "--max-new-tokens", "10"]) == 0
    assert capsys.readouterr().out.startswith("She \ufffd")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--temperature", "0"], "--greedy"),
        (["--max-new-tokens", "0"], "max_new_tokens"),
        (["--top-p", "2"], "top_p"),
    ],
)
def test_cli_sample_refuses_bad_settings_in_one_line(quick, capsys, arguments, message):
    assert main(["generate", "sample", "--out", str(quick[1]), "Tom ", *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1 and "Traceback" not in error


def test_cli_errors_for_a_bad_config_a_missing_corpus_and_no_model(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text('{"model": "gpt", "batch_size": "twelve"}')
    assert main(["generate", "train", "--config", str(config), "--out", str(tmp_path / "r"), "--corpus", CORPUS]) == 2
    assert "batch_size must be an integer" in capsys.readouterr().err
    assert (
        main(["generate", "train", "--config", "tiny_gpt", "--out", str(tmp_path / "r"), "--corpus", "nope.txt"]) == 2
    )
    assert "no corpus 'nope.txt'" in capsys.readouterr().err
    assert main(["generate", "sample", "Tom"]) == 2
    assert "exactly one of --out" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_an_lstm_language_model_trains_and_samples_through_the_same_app(tmp_path):
    config = GenerateConfig.load("tiny_lstm")
    config.epochs = 1
    history = app.train(config, tmp_path / "lstm", corpus=CORPUS, verbose=0)
    assert history.history["val_loss"][-1] < math.log(60)
    generator = app.Generator(app.load_run(tmp_path / "lstm"))
    options = dict(max_new_tokens=15, temperature=0.8, seed=4)
    text = generator(["Tom "], **options)[0]["text"]
    assert "".join(generator.stream("Tom ", **options)) == text and len(text) > 0


@pytest.mark.slow
def test_rest_and_grpc_clients_return_what_the_signature_returns(quick, serve):
    from model_server import model_server

    from kerasllm.serving import generate_grpc, generate_rest

    prompts = ["Tom ", "", "I think "]
    expected = serve(prompts, max_new_tokens=20, temperature=0.8, top_p=0.9, seed=3)
    with model_server({"generate": quick[2]}) as (_, rest_port, grpc_port):
        for client, port in ((generate_rest, rest_port), (generate_grpc, grpc_port)):
            answers = client(
                prompts, max_new_tokens=20, temperature=0.8, top_p=0.9, seed=3, host="127.0.0.1", port=port
            )
            assert [answer["text"] for answer in answers] == [text.decode() for text in expected["text"]]
            assert [answer["new_tokens"] for answer in answers] == expected["new_tokens"].tolist()
        assert generate_grpc([], host="127.0.0.1", port=grpc_port) == []
