"""`kerasllm export verify PATH`: run `verify_worker.py` in a fresh Python process and report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("verify_worker.py")


def _not_a_version_hint(path: Path) -> str:
    """What to pass instead of a folder without saved_model.pb: its newest version when it is a base path."""
    versions = sorted(int(p.name) for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").exists())
    if versions:
        return f"it is a model base path; pass a version directory, e.g. {path / str(versions[-1])}"
    return "pass a version directory such as saved_models/translate/1"


def _died(completed: subprocess.CompletedProcess, path: Path) -> dict[str, Any]:
    """The report of a worker that ended without one: how it ended, in which stage, and its exception line."""
    how = (
        f"killed by {signal.Signals(-completed.returncode).name}"
        if completed.returncode < 0
        else f"exit code {completed.returncode}"
    )
    lines = completed.stderr.splitlines()
    stages = [line.removeprefix("verify: ") for line in lines if line.startswith("verify: ")]
    errors = [line.strip() for line in lines if re.match(r"\w+(Error|Exception): ", line.strip())]
    problem = f"the verifying process died ({how}) while {stages[-1] if stages else 'starting'}" + (
        f": {errors[-1][:300]}" if errors else ""
    )
    return {"path": str(path), "ok": False, "problems": [problem]}


def verify_export(path: str | Path, *, max_seconds: float = 30.0) -> dict[str, Any]:
    """Load and exercise a serving SavedModel in a process that imports only TF and tensorflow-text.

    Whatever the signature: every string input of `serving_default` gets samples and hostile strings in turn,
    every output is checked (one row per input row, finite numbers, each call within `max_seconds`), an empty
    input must be answered alike alone and in a mixed batch, the SavedModel must give the same outputs loaded
    in a TF1 session (as tensorflow_model_server loads it), and its ops must be core TF or tensorflow-text.

    Args:
        path: the SavedModel (version) directory.
        max_seconds: bound on the slowest single call.

    Returns:
        the report: `path`, `ok`, `problems` (one line each) always; `inputs` and `outputs` (name → dtype and
        shape), `ops`, `tensorflow_text_ops`, `slowest_seconds` and per-call `calls` (`seconds`, `outputs`: every
        output's rows) as far as the check got.

    Raises:
        FileNotFoundError: `path` is not a folder holding a saved_model.pb.

    Example:
    >>> # report = verify_export("saved_models/translate/1"); assert report["ok"], report["problems"]
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} is not a directory: pass a SavedModel version directory such as saved_models/translate/1"
        )
    if not (path / "saved_model.pb").exists():
        raise FileNotFoundError(f"no saved_model.pb in {path}: {_not_a_version_hint(path)}")
    # Run the worker file by path (not `-m kerasllm...`) so the kerasllm package is never imported.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, str(WORKER), str(path), "--max-seconds", str(max_seconds)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        return json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return _died(completed, path)


def _first_row(values: list) -> str:
    if not values:
        return "(no rows)"
    first = values[0]
    text = f"{first:.6g}" if isinstance(first, float) else repr(first)
    return text if len(text) <= 50 else text[:47] + "..."


def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary of `verify_export`'s report: problems, the signature, ops, and each call's
    time and the first row of each output."""
    lines = [f"SavedModel {report['path']}: {'OK' if report['ok'] else 'FAILED'}"]
    lines += [f"  problem: {p}" for p in report["problems"]]

    def specs(tensors: dict) -> str:
        return ", ".join(
            f"{name} {spec['dtype']}{spec['shape'] if spec['shape'] is not None else '[?]'}"
            for name, spec in tensors.items()
        )

    if report.get("inputs"):
        lines.append(f"  serving_default: {specs(report['inputs'])} -> {specs(report['outputs'])}")
    if report.get("ops"):
        lines.append(
            f"  {len(report['ops'])} op types; tensorflow-text ops: "
            f"{', '.join(report['tensorflow_text_ops']) or 'none'}"
        )
    calls = report.get("calls", {})
    if calls:
        lines.append(f"  slowest call: {report['slowest_seconds'] * 1000:.0f} ms")
        width = max(map(len, calls))
        for name, call in calls.items():
            outputs = "  ".join(f"{key}={_first_row(rows)}" for key, rows in call["outputs"].items())
            lines.append(f"  {name:>{width}}: {call['seconds'] * 1000:7.0f} ms  {outputs}")
    return "\n".join(lines)
