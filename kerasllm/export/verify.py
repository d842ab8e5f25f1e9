"""`kerasllm export verify PATH`: run `verify_worker.py` in a fresh Python process and report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("verify_worker.py")


def verify_export(path: str | Path, *, max_seconds: float = 30.0) -> dict:
    """Load and exercise a serving SavedModel in a process that imports only TF and tensorflow-text.

    Args:
        path: the SavedModel (version) directory.
        max_seconds: bound on the slowest single call.

    Returns:
        the worker's report: `ok`, `problems`, `ops`, `tensorflow_text_ops`, per-input `calls`.

    Example:
    >>> # report = verify_export("saved_models/translate/1"); assert report["ok"], report["problems"]
    """
    path = Path(path)
    if not (path / "saved_model.pb").exists():
        raise FileNotFoundError(f"no saved_model.pb in {path}: pass a version directory such as saved_models/translate/1")
    # Run the worker file by path (not `-m kerasllm...`) so the kerasllm package is never imported.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run([sys.executable, str(WORKER), str(path), "--max-seconds", str(max_seconds)],
                               capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"verification process failed for {path}: {tail[0]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def format_report(report: dict) -> str:
    """Human-readable summary of `verify_export`'s report."""
    lines = [f"SavedModel {report['path']}: {'OK' if report['ok'] else 'FAILED'}"]
    lines += [f"  problem: {p}" for p in report["problems"]]
    lines.append(f"  {len(report['ops'])} op types; tensorflow-text ops: {', '.join(report['tensorflow_text_ops']) or 'none'}")
    lines.append(f"  slowest call: {report['slowest_seconds'] * 1000:.0f} ms")
    for name, call in report["calls"].items():
        first = call["translations"][0] if call["translations"] else ""
        lines.append(f"  {name:>16}: {call['seconds'] * 1000:7.0f} ms  {first[:70]!r}")
    return "\n".join(lines)
