"""The generic SavedModel path on toy serving modules (no trained model): export, verify, REST/gRPC clients."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasllm.export import (
    ServingModule,
    export_saved_model,
    format_report,
    remove_stale_staging,
    serving_copy,
    verify_export,
)


class Reader(ServingModule):
    """A QA-shaped signature (question + context → answer, score) whose score goes through a Keras variable."""

    def __init__(self):
        model = keras.Sequential(
            [
                keras.Input((1,)),
                keras.layers.Dense(1, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(0.5)),
            ]
        )
        super().__init__(model)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="question"),
            tf.TensorSpec([None], tf.string, name="context"),
        ],
        jit_compile=False,
    )
    def serve(self, question, context):
        length = tf.cast(tf.strings.length(question)[:, None], tf.float32)
        return {"answer": tf.strings.substr(context, 0, 12), "score": self.model(length)[:, 0]}


class Lengths(tf.Module):
    """text → text and its length; with `leak`, an empty row gets the batch's longest length instead (the kind of
    bug a padded buffer shared across rows makes)."""

    def __init__(self, leak: bool = False):
        super().__init__()
        self.leak = leak

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], jit_compile=False)
    def serve(self, text):
        lengths = tf.strings.length(text)
        if self.leak:
            lengths = tf.where(lengths == 0, tf.reduce_max(lengths), lengths)
        return {"echo": text, "length": tf.cast(lengths, tf.float32)}


class FakeTranslate(tf.Module):
    """The translate signature's shape: text → translations, scores."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], jit_compile=False)
    def serve(self, text):
        return {"translations": tf.strings.upper(text), "scores": -tf.cast(tf.strings.length(text), tf.float32)}


class Label(tf.Module):
    """A single-output signature (TF Serving's REST answer then leaves the output name out)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], jit_compile=False)
    def serve(self, text):
        return {"label": tf.where(tf.strings.length(text) > 5, "long", "short")}


@pytest.fixture(scope="module")
def reader_export(tmp_path_factory):
    return export_saved_model(Reader(), tmp_path_factory.mktemp("exports") / "reader")


def test_a_two_input_signature_exports_and_verifies(reader_export):
    assert reader_export.name == "1"
    report = verify_export(reader_export)
    assert report["ok"], report["problems"]
    assert report["inputs"] == {
        "context": {"dtype": "string", "shape": [-1]},
        "question": {"dtype": "string", "shape": [-1]},
    }
    assert set(report["outputs"]) == {"answer", "score"}
    # each hostile string in each input in turn, the other input a sample
    assert {
        "question: empty",
        "context: empty",
        "question: invalid UTF-8",
        "context: 10000 characters",
        "samples",
        "mixed batch",
    } <= set(report["calls"])
    assert report["calls"]["question: empty"]["outputs"]["score"] == [0.5]
    assert report["calls"]["context: empty"]["outputs"]["answer"] == [""]
    assert len(report["calls"]["mixed batch"]["outputs"]["answer"]) == 2 + 2 * 7
    text = format_report(report)
    assert text.startswith(f"SavedModel {reader_export}: OK\n")
    assert "serving_default: context string[-1], question string[-1] -> answer string[-1], score float32[-1]" in text
    assert "answer='A man in a b'" in text and "score=" in text


def test_the_next_version_and_never_overwriting(reader_export):
    base = reader_export.parent
    assert export_saved_model(Reader(), base).name == "2"
    with pytest.raises(FileExistsError, match="exists"):
        export_saved_model(Reader(), base, version=2)


def test_export_is_readable_by_a_server_running_as_another_user(tmp_path):
    previous = os.umask(0o077)  # the exporting user's own files would be 0600, its folders 0700
    try:
        version = export_saved_model(Lengths(), tmp_path / "models" / "lengths")
    finally:
        os.umask(previous)
    folders = [version, *(p for p in version.rglob("*") if p.is_dir())]
    files = [p for p in version.rglob("*") if p.is_file()]
    assert {"saved_model.pb", "variables.index"} <= {p.name for p in files}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {"0o755"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o644"}
    # the base folders the export created, too
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in (tmp_path / "models", version.parent)} == {"0o755"}


def test_stale_staging_of_a_killed_export_is_removed_and_a_live_one_kept(tmp_path):
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        staging = {
            name: tmp_path / f".staging-{host}-{pid}-abc_12"
            for name, pid in (("dead", dead.pid), ("live", live.pid), ("this process", os.getpid()))
        }
        staging["other host"] = tmp_path / f".staging-{host}x-{dead.pid}-abc_12"
        for path in staging.values():
            (path / "variables").mkdir(parents=True)
        version = export_saved_model(Lengths(), tmp_path)
        assert not staging["dead"].exists()
        assert version.name == "1" and (version / "saved_model.pb").exists()
        kept = ("live", "this process", "other host")
        assert sorted(tmp_path.glob(".staging-*")) == sorted(staging[name] for name in kept)
        live.kill()
        live.wait()
        assert set(remove_stale_staging(tmp_path)) == {staging["live"]}
    finally:
        live.kill()
        live.wait()


def test_only_a_servable_serve_function_is_exported(tmp_path):
    class NoServe(tf.Module):
        pass

    class NoSignature(tf.Module):
        @tf.function
        def serve(self, text):
            return {"echo": text}

    class Compiled(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")], jit_compile=True)
        def serve(self, x):
            return {"y": 2 * x}

    for module, message in (
        (NoServe(), "no `serve` tf.function"),
        (NoSignature(), "no input_signature"),
        (Compiled(), "jit-compiled"),
    ):
        with pytest.raises(ValueError, match=message):
            export_saved_model(module, tmp_path)
    assert not list(tmp_path.iterdir())


def test_verify_fails_an_export_whose_answer_to_empty_depends_on_the_batch(tmp_path):
    report = verify_export(export_saved_model(Lengths(leak=True), tmp_path))
    assert not report["ok"]
    assert report["problems"] == [
        "empty: output length is 0.0 alone but 10000.0 in the mixed batch: the answer to an empty input must not "
        "depend on the batch"
    ], report["problems"]
    assert verify_export(export_saved_model(Lengths(), tmp_path))["ok"]


def test_verify_fails_a_module_whose_keras_variables_are_not_tracked(tmp_path):
    """The bug of 6ddbab7, on the base class: without `model_variables`, tf.saved_model.load still works but the
    model server's TF1-session load fails with "Could not find variable"."""
    module = Reader()
    del module.model_variables
    report = verify_export(export_saved_model(module, tmp_path))
    assert not report["ok"]
    assert [p for p in report["problems"] if "TF1 session" in p and "Could not find variable" in p], report["problems"]
    assert report["calls"]["samples"]["outputs"]["score"]  # tf.saved_model.load still serves it


def test_verify_bounds_every_call(tmp_path):
    class Endless(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], jit_compile=False)
        def serve(self, text):
            (steps,) = tf.while_loop(lambda i: tf.size(text) >= 0, lambda i: (i + 1,), [tf.constant(0, tf.int64)])
            return {"steps": tf.fill(tf.shape(text), steps)}

    report = verify_export(export_saved_model(Endless(), tmp_path), max_seconds=2)
    assert report["problems"] == ["samples: the signature did not return within the 2.0 s bound"]


def test_a_verifying_process_that_dies_is_one_line(reader_export, tmp_path, monkeypatch):
    import kerasllm.export.verify as verify

    worker = tmp_path / "dying_worker.py"  # as the out-of-memory killer would end the real one
    worker.write_text(
        "import os, signal, sys\n"
        "print('verify: calling serving_default on \\'mixed batch\\'', file=sys.stderr, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    monkeypatch.setattr(verify, "WORKER", worker)
    assert (
        _one_clear_line(verify_export(reader_export))
        == "the verifying process died (killed by SIGKILL) while calling serving_default on 'mixed batch'"
    )


def _one_clear_line(report):
    assert not report["ok"]
    assert len(report["problems"]) == 1 and "\n" not in report["problems"][0] and len(report["problems"][0]) < 400
    assert "Traceback" not in format_report(report)
    return report["problems"][0]


def test_verify_says_in_one_line_what_is_wrong_with_a_bad_folder(reader_export, tmp_path):
    import shutil

    with pytest.raises(FileNotFoundError, match="is not a directory"):
        verify_export(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no saved_model.pb in .*empty: pass a version directory"):
        verify_export(tmp_path / "empty")
    with pytest.raises(
        FileNotFoundError,
        match=rf"it is a model base path; pass a version directory, e\.g\. "
        rf"{reader_export.parent}/\d+$",
    ):
        verify_export(reader_export.parent)

    truncated = tmp_path / "truncated"
    shutil.copytree(reader_export, truncated)
    (truncated / "saved_model.pb").write_bytes((reader_export / "saved_model.pb").read_bytes()[:300])
    assert "saved_model.pb cannot be read" in _one_clear_line(verify_export(truncated))

    no_variables = tmp_path / "no_variables"
    shutil.copytree(reader_export, no_variables)
    for path in (no_variables / "variables").iterdir():
        path.unlink()
    problem = _one_clear_line(verify_export(no_variables))
    assert problem.startswith(
        "tf.saved_model.load failed (variables/variables.index, variables/variables.data-* missing): "
    ), problem

    no_default = tmp_path / "no_default"
    module = Lengths()
    tf.saved_model.save(module, str(no_default), signatures={"lengths": module.serve})
    problem = _one_clear_line(verify_export(no_default))
    assert problem.startswith("no serving_default signature (it has: lengths)"), problem


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Toy SavedModels behind loopback stand-ins for tensorflow_model_server (tests/model_server.py)."""
    from model_server import model_server

    base = tmp_path_factory.mktemp("served")
    paths = {
        name: export_saved_model(module, base / name)
        for name, module in (("reader", Reader()), ("translate", FakeTranslate()), ("label", Label()))
    }
    with model_server(paths) as server:
        yield server


def _decoded(outputs):
    return {
        key: [v.decode() if isinstance(v, bytes) else v for v in value.numpy().tolist()]
        for key, value in outputs.items()
    }


def test_predict_rest_and_grpc_return_what_the_signature_returns(served):
    from kerasllm.serving import predict_grpc, predict_rest

    signatures, rest_port, grpc_port = served
    inputs = {"question": ["Who rides?", "", "Où ?"], "context": ["A man rides a bike.", "Two dogs.", "Ici, 東京."]}
    expected = _decoded(signatures["reader"](**{key: tf.constant(value) for key, value in inputs.items()}))
    by_rest = predict_rest(inputs, model="reader", host="127.0.0.1", port=rest_port)
    by_grpc = predict_grpc(inputs, model="reader", host="127.0.0.1", port=grpc_port)
    assert by_rest["answer"] == expected["answer"] == by_grpc["answer"] == ["A man rides ", "Two dogs.", "Ici, 東京."]
    assert by_rest["score"] == pytest.approx(expected["score"]) == by_grpc["score"]

    texts = {"text": ["tiny", "much longer"]}
    assert predict_rest(texts, model="label", host="127.0.0.1", port=rest_port) == {"label": ["short", "long"]}
    assert predict_grpc(texts, model="label", host="127.0.0.1", port=grpc_port) == {"label": ["short", "long"]}
    binary = {"text": [b"caf\xc3\xa9 au lait"]}  # bytes go as {"b64": ...} over REST
    assert predict_rest(binary, model="label", host="127.0.0.1", port=rest_port) == {"label": ["long"]}


def test_translate_clients_are_the_predict_clients_in_translation_rows(served):
    from kerasllm.serving import translate_grpc, translate_rest

    _, rest_port, grpc_port = served
    expected = [{"translation": "A DOG.", "score": -6.0}, {"translation": "", "score": 0.0}]
    assert translate_rest(["a dog.", ""], host="127.0.0.1", port=rest_port) == expected
    assert translate_grpc(["a dog.", ""], host="127.0.0.1", port=grpc_port) == expected
    assert translate_grpc([], host="127.0.0.1", port=grpc_port) == []


def test_clients_say_what_went_wrong(served):
    from kerasllm.serving import predict_grpc, predict_rest

    _, rest_port, grpc_port = served
    with pytest.raises(RuntimeError, match=r"model server answered 404: Servable not found .*Latest\(nope\)"):
        predict_rest({"text": ["hi"]}, model="nope", host="127.0.0.1", port=rest_port)
    with pytest.raises(RuntimeError, match="model server answered NOT_FOUND: Servable not found"):
        predict_grpc({"text": ["hi"]}, model="nope", host="127.0.0.1", port=grpc_port)
    with pytest.raises(ConnectionError, match="no model server at 127.0.0.1:9 .*start one as in saved_models/README"):
        predict_rest({"text": ["hi"]}, model="label", host="127.0.0.1", port=9, timeout=2)
    with pytest.raises(ConnectionError, match="gRPC call to 127.0.0.1:9 failed: UNAVAILABLE.*start one"):
        predict_grpc({"text": ["hi"]}, model="label", host="127.0.0.1", port=9, timeout=2)


def test_serving_copy_changes_the_dtype_only_when_layers_differ_and_unties():
    class Tiny(keras.Model):
        """The two hooks serving_copy uses: a `dtype` config and `untied()`."""

        def __init__(self, tied: bool = True, **kwargs):
            super().__init__(**kwargs)
            self.tied = tied
            self.dense = keras.layers.Dense(3, dtype=self.dtype_policy)
            self.dense.build((None, 2))  # built on construction, as kerasllm's models are

        def call(self, inputs):
            return self.dense(inputs)

        def get_config(self):
            return {**super().get_config(), "tied": self.tied}

        def untied(self):
            if not self.tied:
                return self
            copy = Tiny.from_config({**self.get_config(), "tied": False})
            copy.set_weights(self.get_weights())
            return copy

    mixed = Tiny(dtype="mixed_bfloat16")
    served = serving_copy(mixed)
    assert served.dense.compute_dtype == "float32" and not served.tied
    assert all(np.array_equal(a, b) for a, b in zip(served.get_weights(), mixed.get_weights()))
    kept = serving_copy(mixed, serving_dtype=None)
    assert kept.dense.compute_dtype == "bfloat16" and not kept.tied
    already = Tiny(tied=False)
    assert serving_copy(already) is already
