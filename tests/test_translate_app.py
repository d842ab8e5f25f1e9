"""The translation app end to end on the embedded sample: train → evaluate → export → verify → serve."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from apps.translate import app
from apps.translate.config import TranslateConfig
from apps.translate.serving import TranslateModule
from kerasllm.data.tokenizer import END_ID, SubwordTokenizer
from kerasllm.export import verify_export

SENTENCES = ["I am hungry.", "Where is the station?", "We like cats.", ""]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = TranslateConfig.load("tiny")
    config.epochs, config.time_budget_minutes = 2, None
    config.decoding = {"search": "beam", "beam_size": 3, "alpha": 0.6, "max_length": 32}
    history = app.train(config, run_dir, corpus="sample", pair="en-fr", verbose=0)
    assert history.history["val_loss"][-1] < history.history["val_loss"][0], "two epochs must lower val_loss"
    return run_dir


def test_run_directory_holds_what_later_commands_need(run_dir):
    for name in ("best.keras", "source.vocab", "target.vocab", "config.json", "run.json", "history.csv"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "run.json").read_text()) == {"corpus": "sample", "pair": "en-fr"}
    assert json.loads((run_dir / "finished.json").read_text())["epochs"] == 2


def test_a_finished_run_is_not_trained_again(run_dir, capsys):
    assert app.train(TranslateConfig.load(run_dir / "config.json"), run_dir, corpus="sample", pair="en-fr") is None
    assert "finished run" in capsys.readouterr().out


def test_evaluate_reports_sacrebleu_with_signature(run_dir):
    result = app.evaluate(run_dir, split="test", limit=40)
    assert result["segments"] == 40
    assert 0.0 <= result["bleu"] <= 100.0 and 0.0 <= result["chrf"] <= 100.0
    assert result["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert (run_dir / "eval_test.json").exists()


def test_export_verifies_and_matches_in_process_decoding(run_dir, tmp_path):
    version_dir = app.export(run_dir, tmp_path / "translate")
    assert version_dir == tmp_path / "translate" / "1"
    assert not [p for p in version_dir.parent.iterdir() if p.name.startswith(".")], "staging directory left behind"

    report = verify_export(version_dir)
    assert report["ok"], report["problems"]
    assert not [op for op in report["ops"] if op.startswith("Xla")]
    assert set(report["calls"]) >= {"empty", "10000 characters", "invalid UTF-8", "mixed batch"}

    in_process = app.Translator.from_run(app.load_run(run_dir), jit_compile=True)(SENTENCES)
    served = tf.saved_model.load(str(version_dir)).signatures["serving_default"](text=tf.constant(SENTENCES))
    assert [t.decode("utf-8") for t in served["translations"].numpy()] == in_process
    assert np.isfinite(served["scores"].numpy()).all()


def test_verify_fails_an_export_whose_restore_op_restores_nothing(run_dir, tmp_path, monkeypatch):
    """The bug of 6ddbab7: without the module's list of tf.Variables, tf.saved_model.load still worked but the
    model server's TF1-session load failed with "Could not find variable". Verify must catch it."""
    original_init = TranslateModule.__init__

    def without_variables(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        del self.model_variables

    monkeypatch.setattr(TranslateModule, "__init__", without_variables)
    report = verify_export(app.export(run_dir, tmp_path / "translate"))
    assert not report["ok"]
    assert [p for p in report["problems"] if "TF1 session" in p and "Could not find variable" in p], report["problems"]
    # tf.saved_model.load still serves it: only the session load fails.
    assert report["calls"]["samples"]["outputs"]["translations"]


def test_export_never_overwrites_a_version(run_dir, tmp_path):
    app.export(run_dir, tmp_path, version=3)
    with pytest.raises(FileExistsError, match="exists"):
        app.export(run_dir, tmp_path, version=3)
    assert app.export(run_dir, tmp_path).name == "4"


def test_missing_or_corrupt_checkpoint_gives_a_clear_error(run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="train first"):
        app.load_run(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "run.json", "source.vocab", "target.vocab"):
        (broken / name).write_bytes((run_dir / name).read_bytes())
    (broken / "best.keras").write_bytes((run_dir / "best.keras").read_bytes()[:1000])
    with pytest.raises(ValueError, match="best.keras is damaged .* train again with another --out, or delete"):
        app.load_run(broken)


@pytest.fixture(scope="module")
def served(run_dir, tmp_path_factory):
    """The exported SavedModel behind loopback stand-ins for tensorflow_model_server (tests/model_server.py)."""
    from model_server import model_server

    with model_server({"translate": app.export(run_dir, tmp_path_factory.mktemp("served"))}) as server:
        signatures, rest_port, grpc_port = server
        yield signatures["translate"], rest_port, grpc_port


def test_rest_and_grpc_clients_return_what_the_signature_returns(served):
    from kerasllm.serving import translate_grpc, translate_rest

    serve, rest_port, grpc_port = served
    expected = [t.decode() for t in serve(text=tf.constant(SENTENCES))["translations"].numpy()]
    by_rest = translate_rest(SENTENCES, host="127.0.0.1", port=rest_port)
    by_grpc = translate_grpc(SENTENCES, host="127.0.0.1", port=grpc_port)
    assert [row["translation"] for row in by_rest] == expected == [row["translation"] for row in by_grpc]
    assert [row["score"] for row in by_rest] == pytest.approx([row["score"] for row in by_grpc], abs=1e-5)


def test_clients_say_when_no_server_answers():
    from kerasllm.serving import translate_grpc, translate_rest

    with pytest.raises(ConnectionError, match="no model server"):
        translate_rest(["hello"], host="127.0.0.1", port=9, timeout=2)
    with pytest.raises(ConnectionError, match="gRPC call"):
        translate_grpc(["hello"], host="127.0.0.1", port=9, timeout=2)


def test_float32_serving_copy_of_a_mixed_precision_model(tmp_path):
    from kerasllm.export import with_dtype_policy
    from kerasllm.models import Transformer

    mixed = Transformer(50, 60, 1, 1, hidden_dim=16, num_heads=2, intermediate_dim=32, dtype="mixed_bfloat16")
    copy = with_dtype_policy(mixed, "float32")
    assert copy.dtype_policy.name == "float32" and copy.decoder.transformer_layers[0].compute_dtype == "float32"
    tokens = np.array([[5, 6, 7, 3, 0]], "int32"), np.array([[2, 8, 9, 0]], "int32")
    np.testing.assert_allclose(np.asarray(copy(tokens)), np.asarray(mixed(tokens)), atol=0.1)
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), mixed.get_weights()))


def test_export_serves_float32_when_a_mixed_precision_model_is_reloaded(tmp_path):
    """A mixed-precision checkpoint reloaded under the float32 global policy keeps bfloat16 layers."""
    import keras

    from kerasllm.export import export_saved_model, serving_copy
    from kerasllm.models import Transformer

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")  # how `translate train` builds a mixed model
    try:
        Transformer(50, 60, 1, 1, hidden_dim=16, num_heads=2, intermediate_dim=32).save(tmp_path / "m.keras")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.decoder.transformer_layers[0].compute_dtype == "bfloat16"
    tokenizer = SubwordTokenizer(["[PAD]", "[UNK]", "[START]", "[END]"] + list("abcdefghij"))

    def bfloat16_ops(serving_dtype):
        module = TranslateModule(
            serving_copy(reloaded, serving_dtype),
            tokenizer,
            tokenizer,
            max_source_length=128,
            search="greedy",
            max_length=8,
        )
        version = export_saved_model(module, tmp_path / "served")
        graph = tf.saved_model.load(str(version)).signatures["serving_default"].graph.as_graph_def()
        nodes = list(graph.node) + [node for function in graph.library.function for node in function.node_def]
        return [
            node.name
            for node in nodes
            if any(value.type == tf.bfloat16.as_datatype_enum for value in node.attr.values())
        ]

    assert bfloat16_ops(None), "kept as trained, the graph computes in bfloat16"
    assert not bfloat16_ops("float32")


def test_lstm_translates_a_batch_of_empty_strings(tmp_path):
    """Found by `kerasllm export verify` on the Multi30K LSTM: zero source columns broke the LSTM encoder,
    in the XLA-compiled search (static width 0) and in the SavedModel (width known at run time)."""
    from kerasllm.decoding import compile_search, greedy_search
    from kerasllm.export import export_saved_model, serving_copy
    from kerasllm.models import LSTMSeq2Seq

    model = LSTMSeq2Seq(14, 14, embedding_dim=8, units=8, attention="luong_general", bidirectional_encoder=True)
    tokenizer = SubwordTokenizer(["[PAD]", "[UNK]", "[START]", "[END]"] + list("abcdefghij"))
    in_process = compile_search(
        greedy_search, model, start_id=tokenizer.start_id, end_id=tokenizer.end_id, max_length=6
    )(np.zeros((2, 0), "int32"))
    assert in_process["tokens"].shape[0] == 2
    module = TranslateModule(
        serving_copy(model), tokenizer, tokenizer, max_source_length=128, search="beam", beam_size=2, max_length=6
    )
    version = export_saved_model(module, tmp_path)
    served = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(["", "   "]))
    assert served["translations"].shape == (2,) and np.isfinite(served["scores"].numpy()).all()


def test_tied_lstm_is_served_untied_with_the_same_translations(tmp_path):
    """serving_copy serves a tied model through `model.untied()`; the SavedModel must still translate as the
    tied model does in process."""
    import keras

    from kerasllm.export import export_saved_model, serving_copy
    from kerasllm.models import LSTMSeq2Seq

    keras.utils.set_random_seed(1)
    model = LSTMSeq2Seq(
        14,
        14,
        embedding_dim=8,
        units=8,
        attention="luong_general",
        bidirectional_encoder=True,
        tie_output_embedding=True,
    )
    embeddings = model.target_embedding.embeddings.numpy()
    embeddings[END_ID] = 0.0  # END's logit is then 0, below the best of the others: translations are not empty
    model.target_embedding.embeddings.assign(embeddings)
    tokenizer = SubwordTokenizer(["[PAD]", "[UNK]", "[START]", "[END]"] + list("abcdefghij"))
    texts = ["abc", "jihgfe", "a", "bead"]
    decoding = {"search": "beam", "beam_size": 2, "alpha": 0.6, "max_length": 8}
    in_process = app.Translator(model, tokenizer, tokenizer, decoding, max_source_length=128, jit_compile=False)(texts)
    module = TranslateModule(
        serving_copy(model), tokenizer, tokenizer, max_source_length=128, search="beam", beam_size=2, max_length=8
    )
    version = export_saved_model(module, tmp_path)
    served = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(texts))
    assert [t.decode("utf-8") for t in served["translations"].numpy()] == in_process
    assert any(in_process), "a model that translates everything to nothing would make this test vacuous"


def test_lr_decay_needs_a_constant_learning_rate(tmp_path):
    from apps.translate.config import CONFIG_DIR

    values = json.loads((CONFIG_DIR / "transformer.json").read_text()) | {"lr_decay_patience": 1}
    (tmp_path / "decayed.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match="lr_decay_patience needs a constant learning_rate"):
        TranslateConfig.load(tmp_path / "decayed.json")


def _stdin(monkeypatch, data: bytes) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_predict_translates_stdin_lines_with_invalid_utf8_and_empty_ones(run_dir, monkeypatch, capsys):
    from apps.cli import main

    _stdin(monkeypatch, b"I am hungry.\ncaf\xc3 \xff bad\n\n")
    assert main(["translate", "predict", "--out", str(run_dir)]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    assert len(lines) == 3 and lines[0] and lines[2] == ""


def test_predict_with_empty_stdin_says_what_to_give(run_dir, monkeypatch, capsys):
    from apps.cli import main

    _stdin(monkeypatch, b"")
    assert main(["translate", "predict", "--out", str(run_dir)]) == 2
    error = capsys.readouterr().err
    assert "no input: give texts as arguments, or one per line on stdin" in error and error.count("\n") == 1


def test_predict_on_a_bad_saved_model_folder_is_one_line(run_dir, tmp_path, capsys):
    import shutil

    from apps.cli import main

    version = app.export(run_dir, tmp_path / "translate")
    damaged = tmp_path / "damaged"
    shutil.copytree(version, damaged)
    (damaged / "saved_model.pb").write_bytes((version / "saved_model.pb").read_bytes()[:200])
    no_signature = tmp_path / "no_signature"
    tf.saved_model.save(tf.Module(), str(no_signature))
    (tmp_path / "empty").mkdir()
    cases = {
        tmp_path / "missing": "does not exist",
        tmp_path / "empty": "is not a SavedModel",
        damaged: "is a damaged SavedModel",
        no_signature: "has no serving_default signature",
    }
    for path, message in cases.items():
        assert main(["translate", "predict", "--saved-model", str(path), "hello"]) == 2, path
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
    assert main(["translate", "predict", "--saved-model", str(version), "I am hungry.", ""]) == 0
    assert capsys.readouterr().out.split("\n")[1] == ""


def test_init_from_a_run_takes_its_vocabularies_and_weights(run_dir, tmp_path, capsys):
    import csv

    config = TranslateConfig.load(run_dir / "config.json")
    config.epochs = 1
    history = app.train(config, tmp_path / "continued", corpus="sample", pair="en-fr", init_from=run_dir, verbose=0)
    for name in ("source.vocab", "target.vocab"):
        assert (tmp_path / "continued" / name).read_bytes() == (run_dir / name).read_bytes()
    assert "initialised from" in capsys.readouterr().out
    with (run_dir / "history.csv").open(newline="") as handle:
        scratch_first_epoch = float(next(csv.DictReader(handle))["val_loss"])
    assert history.history["val_loss"][0] < scratch_first_epoch, "a run started from trained weights starts ahead"
