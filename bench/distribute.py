"""Data-parallel overhead on this machine: each `--distribute` path against one device, measured in the same run.

    python bench/distribute.py

Every row trains the same TransformerClassifier (tests/distributed_fit.py: width `--hidden-dim`, SGD, no dropout)
on the same batches in a fresh process, and reports the median epoch time per step after the first (compiling)
epoch. Rows: one device and `mirrored` over 2 logical CPUs on TensorFlow; one device, `jax` over 2 CPU devices in
one process, and `jax` over two processes on 127.0.0.1 (gloo collectives) on JAX. On 2 cores no path can be faster
than one device: the replicas share the same cores. The target is overhead <= 1.5x against the same backend's single
device. Also re-checks the MultiWorkerMirroredStrategy fact (`--multi-worker`): two TF workers over loopback; and
fault tolerance (`--fault`): `kerasllm classify train --distribute jax` in two processes on SMS spam, once straight
through and once with process 1 SIGKILLed mid-epoch and both started again, ending at the same metrics within noise.
Writes REPORT_DIR/results.json and report.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decode_speed import cpu_description  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "distributed_fit.py"
OVERHEAD_TARGET = 1.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(work: Path, backend: str, flags: list[str], sizes: list[str]) -> subprocess.Popen:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, str(SCRIPT), "--initial", str(work / f"initial-{backend}.npz")]
    command += ["--out", str(work / "out.npz"), *sizes, *flags]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def step_ms(process: subprocess.Popen) -> float:
    output, _ = process.communicate(timeout=1800)
    found = re.search(r"step_ms ([0-9.]+)", output)
    if process.returncode != 0 or not found:
        raise RuntimeError(f"run failed:\n{output[-2000:]}")
    return float(found.group(1))


def measure(work: Path, sizes: list[str]) -> list[dict[str, Any]]:
    rows = []
    paths = [
        ("tensorflow", "none", "one device", []),
        ("tensorflow", "none", "one device, no XLA", ["--no-jit"]),
        ("tensorflow", "mirrored", "MirroredStrategy, 2 logical CPUs", ["--distribute", "mirrored", "--devices", "2"]),
        ("jax", "none", "one device", []),
        ("jax", "jax", "DataParallel, 2 CPU devices, 1 process", ["--distribute", "jax", "--devices", "2"]),
    ]
    for backend, kind, what, flags in paths:
        print(f"{backend} {what} ...", flush=True)
        rows.append(
            {
                "backend": backend,
                "distribute": kind,
                "what": what,
                "step_ms": step_ms(launch(work, backend, flags, sizes)),
            }
        )
    print("jax DataParallel, 2 processes over 127.0.0.1 ...", flush=True)
    flags = [
        "--distribute",
        "jax",
        "--coordinator",
        f"127.0.0.1:{free_port()}",
        "--num-processes",
        "2",
        "--devices",
        "1",
    ]
    processes = [launch(work, "jax", flags + ["--process-id", str(i)], sizes) for i in (0, 1)]
    times = [step_ms(process) for process in processes]
    rows.append(
        {
            "backend": "jax",
            "distribute": "jax",
            "what": "DataParallel, 2 processes over 127.0.0.1",
            "step_ms": max(times),
        }
    )
    for row in rows:
        single = next(r for r in rows if r["backend"] == row["backend"] and r["distribute"] == "none")
        row["overhead"] = round(row["step_ms"] / single["step_ms"], 3)
        if row["distribute"] == "mirrored":  # Keras runs the step without XLA under tf.distribute
            plain = next(r for r in rows if r["what"] == "one device, no XLA")
            row["overhead_vs_no_xla"] = round(row["step_ms"] / plain["step_ms"], 3)
    return rows


MULTI_WORKER = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": sys.argv[1].split(",")}, "task": {"type": "worker", "index": int(sys.argv[2])}})
    import keras, numpy as np, tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    data = tf.data.Dataset.from_tensor_slices((np.ones((64, 4), "float32"), np.ones((64, 1), "float32"))).batch(8)
    try:
        model.fit(data, epochs=1, verbose=0)
        print("RESULT fit ran")
    except Exception as error:
        print("RESULT " + type(error).__name__ + ": " + " ".join(str(error).split())[:240])
    """
)


def multi_worker_check(work: Path) -> str:
    """What Keras 3's fit does under MultiWorkerMirroredStrategy with two TF workers on this machine."""
    script = work / "multi_worker.py"
    script.write_text(MULTI_WORKER)
    workers = ",".join(f"localhost:{free_port()}" for _ in range(2))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), workers, str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (0, 1)
    ]
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            process.kill()
            outputs.append(process.communicate()[0] + "\nRESULT no answer in 300 s")
    results = [
        line[len("RESULT ") :] for output in outputs for line in output.splitlines() if line.startswith("RESULT ")
    ]
    return results[0] if results else outputs[0][-400:]


def history(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def train_job(work: Path, run_dir: Path, epochs: int) -> list[subprocess.Popen]:
    """Both processes of `kerasllm classify train --distribute jax` on SMS spam (tiny Transformer, no budget)."""
    config = json.loads((ROOT / "apps" / "classify" / "configs" / "tiny_transformer.json").read_text())
    config.update(time_budget_minutes=None, early_stopping_patience=None)
    (work / "fault.json").write_text(json.dumps(config))
    command = [sys.executable, "-m", "apps.cli", "classify", "train", "--config", str(work / "fault.json")]
    command += ["--corpus", "sms_spam", "--out", str(run_dir), "--epochs", str(epochs), "--distribute", "jax"]
    command += ["--devices", "1", "--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", "2"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    logs = [(run_dir.parent / f"{run_dir.name}-{i}.log").open("a") for i in (0, 1)]
    return [
        subprocess.Popen(
            command + ["--process-id", str(i)], env=env, stdout=logs[i], stderr=subprocess.STDOUT, cwd=ROOT
        )
        for i in (0, 1)
    ]


def wait(processes: list[subprocess.Popen], timeout: float) -> list[int | None]:
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return [process.returncode for process in processes]


def fault_tolerance(work: Path, epochs: int) -> dict[str, Any]:
    """A straight run against one whose process 1 is SIGKILLed mid-epoch, then both restarted."""
    straight, killed = work / "straight", work / "killed"
    codes = wait(train_job(work, straight, epochs), 1800)
    job = train_job(work, killed, epochs)
    while len(history(killed)) < 2 and job[1].poll() is None:
        time.sleep(0.05)
    rows = history(killed)
    epoch_seconds = float(rows[-1]["elapsed_seconds"]) - float(rows[-2]["elapsed_seconds"])
    time.sleep(epoch_seconds / 2)  # into the third epoch: its backup is the second's end
    job[1].kill()
    killed_at = len(history(killed))
    # Process 0 now waits in a collective for a peer that is gone: how it ends is part of the result.
    chief = wait(job[:1], 120)[0]
    codes_restart = wait(train_job(work, killed, epochs), 1800)
    metrics = ("loss", "accuracy", "val_loss", "val_accuracy")
    last = {
        name: {key: float(history(run)[-1][key]) for key in metrics}
        for name, run in (("straight", straight), ("killed", killed))
    }
    return {
        "epochs": epochs,
        "epoch_seconds": round(epoch_seconds, 2),
        "killed_after_epochs": killed_at,
        "chief_exit_after_peer_killed": chief,
        "exit_codes": {"straight": codes, "restarted": codes_restart},
        "history_rows": {"straight": len(history(straight)), "killed": len(history(killed))},
        "last_epoch": last,
    }


def report(results: dict[str, Any], command: str) -> str:
    lines = [
        "# Data-parallel overhead",
        "",
        f"    {command}",
        "",
        f"Machine: {results['cpu']}. Model: TransformerClassifier, width {results['sizes']['hidden_dim']}, one layer, "
        f"batch {results['sizes']['batch']} (global), {results['sizes']['steps']} steps per epoch, median of epochs "
        "2.. per step. Overhead: against the same backend's one device in this run; target <= "
        f"{OVERHEAD_TARGET}x (2 cores cannot show a speed-up: every replica shares them).",
        "",
        "| backend | path | ms/step | overhead |",
        "|---|---|---|---|",
    ]
    for row in results["rows"]:
        verdict = (
            "" if row["distribute"] == "none" else (" met" if row["overhead"] <= OVERHEAD_TARGET else " **missed**")
        )
        versus = f" ({row['overhead_vs_no_xla']:.2f}x one device without XLA)" if "overhead_vs_no_xla" in row else ""
        lines.append(
            f"| {row['backend']} | {row['what']} | {row['step_ms']:.2f} | {row['overhead']:.2f}x{verdict}{versus} |"
        )
    if "fault" in results:
        fault = results["fault"]
        lines += [
            "",
            f"Fault tolerance (`kerasllm classify train --distribute jax`, 2 processes, SMS spam, {fault['epochs']} "
            f"epochs of {fault['epoch_seconds']} s): process 1 SIGKILLed half-way through epoch "
            f"{fault['killed_after_epochs'] + 1}; process 0 then ended with exit code "
            f"{fault['chief_exit_after_peer_killed']} (None: killed after 120 s waiting); both restarted with the same "
            "command (exit codes " + str(fault["exit_codes"]["restarted"]) + ").",
            "",
            "| run | " + " | ".join(fault["last_epoch"]["straight"]) + " |",
            "|---|" + "---|" * len(fault["last_epoch"]["straight"]),
        ]
        for name, values in fault["last_epoch"].items():
            lines.append(f"| {name} | " + " | ".join(f"{value:.4f}" for value in values.values()) + " |")
    if "multi_worker" in results:
        lines += [
            "",
            f"MultiWorkerMirroredStrategy, 2 TF workers over loopback, Keras `fit`: {results['multi_worker']}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per epoch (default 50)")
    parser.add_argument("--batch", type=int, default=64, help="global batch (default 64)")
    parser.add_argument("--hidden-dim", type=int, default=128, help="model width (default 128)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs, the first untimed (default 4)")
    parser.add_argument("--multi-worker", action="store_true", help="also re-check MultiWorkerMirroredStrategy")
    parser.add_argument("--fault", type=int, metavar="EPOCHS", help="also the kill-and-resume run, this many epochs")
    parser.add_argument("--report-dir", default=str(Path(__file__).with_name("distribute")))
    args = parser.parse_args(argv)
    sizes = ["--steps", str(args.steps), "--batch", str(args.batch), "--hidden-dim", str(args.hidden_dim)]
    sizes += ["--epochs", str(args.epochs)]
    with tempfile.TemporaryDirectory() as work:
        results: dict[str, Any] = {
            "cpu": cpu_description(),
            "sizes": {"steps": args.steps, "batch": args.batch, "hidden_dim": args.hidden_dim, "epochs": args.epochs},
            "rows": measure(Path(work), sizes),
        }
        if args.multi_worker:
            results["multi_worker"] = multi_worker_check(Path(work))
        if args.fault:
            results["fault"] = fault_tolerance(Path(work), args.fault)
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    command = "python bench/distribute.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    (report_dir / "report.md").write_text(report(results, command.strip()))
    print(report(results, command.strip()))


if __name__ == "__main__":
    main()
