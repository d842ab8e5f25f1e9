"""Command-line pieces every app's `train / evaluate / export / predict` share, so an app's cli.py adds only its
own options. TensorFlow is imported only inside a command, so `--help` stays instant."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from kerasllm.distribute import DISTRIBUTE, Distribution


def add_train_arguments(parser: argparse.ArgumentParser, *, default_config: str, presets: str) -> None:
    parser.add_argument(
        "--config",
        default=None,
        help=f"preset name ({presets}) or a JSON file; default: the run's own config when --out "
        f"holds one, else {default_config}",
    )
    parser.add_argument("--out", required=True, help="run directory (checkpoints, vocabularies, logs)")
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="RUN_DIR",
        help="start from a trained run of this app: its vocabularies and the weights of every "
        "layer with the same name and shapes (pre-training, then fine-tuning)",
    )
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--minutes", type=float, help="override the config's training time budget")
    parser.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    add_distribute_arguments(parser)


def add_distribute_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "data parallelism", "the same command on several devices or machines (docs/distributed.md)"
    )
    group.add_argument(
        "--distribute",
        choices=DISTRIBUTE,
        default="none",
        help="none: one device; mirrored: tf.distribute.MirroredStrategy over this machine's devices; jax: the "
        "Keras distribution API on the JAX backend, one process or several (the multi-machine path); "
        "multi-worker: refused, Keras 3's fit does not run under MultiWorkerMirroredStrategy",
    )
    group.add_argument(
        "--devices", type=int, help="split the CPU into N devices (to try a path on one machine; default: as found)"
    )
    group.add_argument("--coordinator", metavar="HOST:PORT", help="jax, several processes: the address of process 0")
    group.add_argument("--num-processes", type=int, help="jax: processes in the job (default 1)")
    group.add_argument("--process-id", type=int, help="jax: this process, 0..N-1; 0 writes the run (default 0)")


def distribution_scope(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The scope a command runs in: its `--distribute` flags' (see `kerasllm.distribute`), else none."""
    if getattr(args, "distribute", "none") == "none" and getattr(args, "devices", None) is None:
        return contextlib.nullcontext()
    distribution = Distribution.from_arguments(
        args.distribute,
        devices=args.devices,
        coordinator=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )
    distribution.prepare_backend()
    return distribution.scope()


def train_config(config_class: Any, args: argparse.Namespace, default_config: str) -> Any:
    """The config a `train` command runs: `--config`, else the run's own when resuming, else the default preset;
    then `--epochs` / `--minutes`, which a resume may change."""
    saved = Path(args.out) / "config.json"
    config = config_class.load(args.config or (saved if saved.exists() else default_config))
    if args.epochs is not None:
        config.epochs = args.epochs
    if args.minutes is not None:
        config.time_budget_minutes = args.minutes
    config.validate(f"--config {args.config}" if args.config else str(saved))
    return config


def train_on_corpus(train: Any, config_class: Any, args: argparse.Namespace, default_config: str) -> int:
    """A `train` command of an app whose runs read one `--corpus`: `train(config, out, corpus=..., ...)`."""
    config = train_config(config_class, args, default_config)
    train(
        config,
        args.out,
        corpus=args.corpus,
        data_dir=args.data_dir,
        init_from=args.init_from,
        verbose=fit_verbosity(),
    )
    return 0


def fit_verbosity() -> int | str:
    """The live progress bar on a terminal, one line per epoch when logging to a file."""
    return "auto" if sys.stdout.isatty() else 2


def add_export_arguments(parser: argparse.ArgumentParser, *, app: str) -> None:
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--base", default=f"saved_models/{app}", help=f"model base path (default saved_models/{app})")
    parser.add_argument("--version", type=int, help="version number (default: next free)")
    parser.add_argument(
        "--serving-dtype",
        default="float32",
        help="dtype policy of the served model (default float32; 'keep' keeps the trained policy)",
    )


def serving_dtype(args: argparse.Namespace) -> str | None:
    return None if args.serving_dtype == "keep" else args.serving_dtype


def add_predict_arguments(parser: argparse.ArgumentParser, *, what: str = "texts") -> None:
    parser.add_argument("--out", help="run directory")
    parser.add_argument("--saved-model", help="exported version directory (instead of --out)")
    parser.add_argument("texts", nargs="*", help=f"{what} (default: one per line on stdin)")


MODEL_FLAGS = {"out": "--out (a run directory)", "saved_model": "--saved-model (an exported version)"}


def read_texts(args: argparse.Namespace, models: dict[str, str] = MODEL_FLAGS) -> list[str | bytes]:
    """The texts of a `predict` command: its arguments, else one per line of stdin, as bytes so that a line with
    invalid UTF-8 reaches the model (the graph replaces bad bytes) instead of failing the whole input. Checks first
    that the command names exactly one model: one of `models` (argument name → how the error names it)."""
    if sum(bool(getattr(args, name)) for name in models) != 1:
        raise ValueError(f"give exactly one of {' or '.join(models.values())}")
    if args.texts:
        return list(args.texts)
    texts = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    if not texts:
        raise ValueError("no input: give texts as arguments, or one per line on stdin")
    return texts


def load_serving_signature(path: str | Path) -> tuple[Any, Any]:
    """`(loaded, serving_default)` of an exported version folder, with one clear line for a missing, foreign or
    damaged SavedModel. Keep `loaded` alive while calling the signature: it owns the variables."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (kernels the SavedModel needs)

    path = Path(path)
    if not (path / "saved_model.pb").exists():
        what = "does not exist" if not path.exists() else "is not a SavedModel (no saved_model.pb)"
        raise FileNotFoundError(f"{path} {what}: pass an exported version folder such as saved_models/translate/1")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as error:  # truncated protobuf, missing variables, ...: name it, say what helps.
        first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ValueError(f"{path} is a damaged SavedModel ({first.strip()[:160]}); export it again") from None
    if "serving_default" not in loaded.signatures:
        raise ValueError(
            f"{path} has no serving_default signature (it has: {', '.join(loaded.signatures) or 'none'})"
            "; export it with `kerasllm <app> export`"
        )
    return loaded, loaded.signatures["serving_default"]


def as_text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
