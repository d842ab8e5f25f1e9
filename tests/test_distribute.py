"""Data-parallel training equals one device's: 2 replicas with half the batch each against 1 replica with the whole
batch, same initial weights, SGD, no dropout, same data order, 20 steps (tests/distributed_fit.py in fresh
processes). Relative difference per weight tensor: ||a - b|| / ||b||."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kerasllm.distribute import MULTI_WORKER_UNSUPPORTED, Distribution, Replicas

SCRIPT = Path(__file__).with_name("distributed_fit.py")
TOLERANCE = 1e-5


def fit(tmp_path: Path, name: str, *flags: str, backend: str = "tensorflow") -> subprocess.Popen:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, str(SCRIPT), "--initial", str(tmp_path / f"initial-{backend}.npz")]
    command += ["--out", str(tmp_path / f"{name}.npz"), *flags]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, output[-3000:]
    return output


def weights(path: Path) -> list[np.ndarray]:
    stored = np.load(path)
    return [stored[f"w{i}"] for i in range(len(stored.files))]


def assert_same_training(tmp_path: Path, name: str, reference: str, backend: str = "tensorflow") -> None:
    initial = weights(tmp_path / f"initial-{backend}.npz")
    ours, theirs = weights(tmp_path / f"{name}.npz"), weights(tmp_path / f"{reference}.npz")
    moved = max(float(np.linalg.norm(b - a)) for a, b in zip(initial, theirs))
    assert moved > 1e-2, "training did not move the weights: the comparison would prove nothing"
    for a, b in zip(ours, theirs):
        assert np.linalg.norm(a - b) <= TOLERANCE * max(np.linalg.norm(b), 1e-12)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mirrored_two_logical_cpus_equal_one_device(tmp_path):
    assert "replicas 1 " in finish(fit(tmp_path, "single"))
    assert "replicas 2 " in finish(fit(tmp_path, "mirrored", "--distribute", "mirrored", "--devices", "2"))
    assert_same_training(tmp_path, "mirrored", "single")


def test_jax_two_devices_in_one_process_equal_one_device(tmp_path):
    assert "replicas 1 " in finish(fit(tmp_path, "jax-single", backend="jax"))
    assert "replicas 2 " in finish(fit(tmp_path, "jax-2", "--distribute", "jax", "--devices", "2", backend="jax"))
    assert_same_training(tmp_path, "jax-2", "jax-single", "jax")


def test_jax_two_processes_over_loopback_equal_one_device(tmp_path):
    started = time.perf_counter()
    finish(fit(tmp_path, "jax-single", backend="jax"))
    coordinator = f"127.0.0.1:{free_port()}"
    flags = ("--distribute", "jax", "--coordinator", coordinator, "--num-processes", "2", "--devices", "1")
    flags += ("--run-dir", str(tmp_path / "run"))  # with the runner's callbacks: collective saves and restores
    processes = [fit(tmp_path, "jax-2p", *flags, "--process-id", str(i), backend="jax") for i in (0, 1)]
    outputs = [finish(process, timeout=80) for process in processes]
    assert all("replicas 2 processes 2" in output for output in outputs), outputs
    assert_same_training(tmp_path, "jax-2p", "jax-single", "jax")
    assert (tmp_path / "run" / "best.keras").exists() and (tmp_path / "run" / "workers" / "1" / "backup").exists()
    assert time.perf_counter() - started <= 90


def test_shard_cuts_batches_to_the_replicas_and_gives_each_process_its_rows():
    import tensorflow as tf

    dataset = tf.data.Dataset.range(11).batch(4)  # batches of 4, 4 and 3 rows
    assert [list(b.numpy()) for b in Replicas(2).shard(dataset)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    pairs = tf.data.Dataset.from_tensor_slices((np.arange(11), -np.arange(11))).batch(4)
    second = [(list(x.numpy()), list(y.numpy())) for x, y in Replicas(2, 2, 1).shard(pairs)]
    assert second == [([2, 3], [-2, -3]), ([6, 7], [-6, -7]), ([9], [-9])]
    assert list(Replicas(4).shard(dataset).as_numpy_iterator())[-1].tolist() == [4, 5, 6, 7]  # 3 < 4 rows: dropped


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(kind="multi-worker"), "keras-team/keras#20585"),
        (dict(kind="ring"), "must be one of"),
        (dict(kind="jax", num_processes=2), "--coordinator HOST:PORT"),
        (dict(kind="mirrored", num_processes=2, coordinator="h:1"), "need --distribute jax"),
        (dict(kind="jax", num_processes=2, process_id=2, coordinator="h:1"), "--process-id must be in 0..1"),
        (dict(kind="none", devices=2), "means nothing alone"),
        (dict(kind="jax", coordinator="nohost"), "HOST:PORT"),
    ],
)
def test_bad_distribution_is_one_clear_error(arguments, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("#", r"\#")):
        Distribution(**arguments)
    assert "--distribute jax" in MULTI_WORKER_UNSUPPORTED


def test_environment_fills_the_job(monkeypatch):
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.1:1234,10.0.0.2:2345")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    assert Distribution.from_arguments("jax") == Distribution("jax", None, "10.0.0.1:1234", 2, 1)
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "one")
    with pytest.raises(ValueError, match="KERAS_DISTRIBUTION_PROCESS_ID must be an integer"):
        Distribution.from_arguments("jax")


def test_jax_refused_once_keras_runs_on_tensorflow():
    import keras

    assert keras.backend.backend() == "tensorflow"
    with pytest.raises(ValueError, match="set KERAS_BACKEND=jax before"):
        Distribution("jax").prepare_backend()


def test_a_run_trained_on_jax_over_two_devices_exports_on_tensorflow_and_verifies(tmp_path):
    from apps.classify.datasets import load_split

    # 200 messages of the embedded sample: a few batches, so JAX compiles a few shapes, not every bucket's.
    records = list(load_split("sms_spam_sample", "train"))[:200]
    corpus = tmp_path / "sms.tsv"
    corpus.write_text("text\tlabel\n" + "".join(f"{text}\t{'spam' if label else 'ham'}\n" for text, label in records))
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "apps.cli", "classify", "train", "--config", "tiny_transformer"]
    command += ["--corpus", str(corpus), "--epochs", "1", "--out", str(run_dir), "--distribute", "jax"]
    command += ["--devices", "2"]
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(root))
    env.pop("KERAS_BACKEND", None)  # the flag chooses it
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (run_dir / "best.keras").exists() and (run_dir / "finished.json").exists()

    from apps.classify import app
    from kerasllm.export import verify_export

    report = verify_export(app.export(run_dir, tmp_path / "exported"))
    assert report["ok"], report["problems"]
    answer = app.Classifier.from_run(app.load_run(run_dir))(["free prize, call now", ""])
    assert len(answer["label"]) == 2 and np.isfinite(answer["probabilities"]).all()


@pytest.mark.parametrize("name", ["translate", "classify", "generate", "word2vec"])
def test_every_app_train_offers_the_flags(name, capsys):
    from apps.cli import APPS, main

    assert name in APPS
    with pytest.raises(SystemExit):
        main([name, "train", "--help"])
    printed = capsys.readouterr().out
    for flag in ("--distribute {none,mirrored,multi-worker,jax}", "--devices", "--coordinator", "--num-processes"):
        assert flag in printed


def test_multi_worker_on_the_command_line_is_one_line_with_the_way_out(tmp_path, capsys):
    from apps.cli import main

    command = ["classify", "train", "--config", "tiny_bilstm", "--corpus", "sms_spam_sample"]
    assert main([*command, "--out", str(tmp_path / "run"), "--distribute", "multi-worker"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "keras-team/keras#20585" in error and "--distribute jax" in error
    assert not (tmp_path / "run").exists()


def test_each_process_but_the_chief_writes_into_its_own_directory(tmp_path):
    from kerasllm.runner import worker_directory

    assert worker_directory(tmp_path, Replicas(2, 2, 1)) == tmp_path / "workers" / "1"
    assert worker_directory(tmp_path, Replicas(2, 2, 0)) == tmp_path


def test_a_budget_across_processes_and_an_uneven_batch_are_refused_before_training():
    from apps.generate.config import GenerateConfig
    from kerasllm.runner import _check_replicas

    config = GenerateConfig.load("tiny_gpt")
    config.time_budget_minutes = 5.0
    with pytest.raises(ValueError, match='"time_budget_minutes": null'):
        _check_replicas(config, Replicas(2, 2, 0))
    _check_replicas(config, Replicas(2))  # one process: its clock is the only one
    config.batch_size = 7
    with pytest.raises(ValueError, match="batch_size 7 does not split over 2 replicas"):
        _check_replicas(config, Replicas(2))
