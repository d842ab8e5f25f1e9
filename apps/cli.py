"""The `kerasllm` command line. TensorFlow is imported only inside a command, so `--help` is instant."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from apps import commands

# Each app is a package with cli.py (`register(subparsers)` adds its subcommands) and app.py (`APP`, its
# `kerasllm.runner.App`). Importing cli.py must stay cheap: no TensorFlow.
APPS = {
    "translate": "apps.translate",
    "classify": "apps.classify",
    "generate": "apps.generate",
    "word2vec": "apps.word2vec",
}


def _add_data_commands(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="inspect the corpora", description="Inspect the corpora.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    stats = data_sub.add_parser(
        "stats",
        help="pair/line counts per split, token-length percentiles, [UNK] share",
        description="Print pair/line counts per split, token-length percentiles and the share of [UNK] "
        "tokens for a registered corpus (see `kerasllm data list`).",
    )
    stats.add_argument("name", help="corpus name, e.g. multi30k, tatoeba-fra-eng, sample")
    stats.add_argument("--pair", default=None, help="language pair for translation corpora, e.g. en-de")
    stats.add_argument(
        "--vocab-size",
        type=int,
        default=8000,
        help="WordPiece vocabulary size to train on the train split (default 8000)",
    )
    stats.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    stats.set_defaults(func=_run_data_stats)
    pipeline_demo = data_sub.add_parser(
        "demo",
        help="the data pipeline on the embedded sample",
        description="Load the embedded sample, train vocabularies, build the bucketed pipeline and print what it did.",
    )
    pipeline_demo.set_defaults(func=_run_data_demo)
    listing = data_sub.add_parser(
        "list",
        help="list the registered corpora",
        description="List the registered corpora, where they are looked for and whether they are present.",
    )
    listing.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    listing.set_defaults(func=_run_data_list)


def _run_data_stats(args: argparse.Namespace) -> int:
    from kerasllm.data import stats

    print(
        stats.format_stats(
            stats.corpus_stats(args.name, pair=args.pair, vocab_size=args.vocab_size, data_dir=args.data_dir)
        )
    )
    return 0


def _run_data_demo(args: argparse.Namespace) -> int:
    from kerasllm.data import demo

    demo.main()
    return 0


def _run_data_list(args: argparse.Namespace) -> int:
    from kerasllm.data import registry

    print(registry.format_listing(data_dir=args.data_dir))
    return 0


def _add_export_commands(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="check exported SavedModels", description="Check exported SavedModels."
    )
    sub = export.add_subparsers(dest="export_command", required=True, metavar="COMMAND")
    verify = sub.add_parser(
        "verify",
        help="load and exercise a SavedModel as TF Serving would",
        description="In a fresh process importing only tensorflow and tensorflow_text: load the "
        "SavedModel, feed every string input of serving_default sample and hostile text (empty, 10,000 "
        "characters, invalid UTF-8, ...) and a mixed batch, check every output (one row per input, finite, "
        "each call time-bounded, an empty input answered alike alone and in the batch), load it again in a "
        "TF1 session as tensorflow_model_server does, list its ops, and fail on ops outside core TF + "
        "tensorflow-text or on XLA.",
    )
    verify.add_argument("path", help="SavedModel version directory, e.g. saved_models/translate/1")
    verify.add_argument("--max-seconds", type=float, default=30.0, help="bound on the slowest call (default 30)")
    verify.set_defaults(func=_run_export_verify)


def _run_export_verify(args: argparse.Namespace) -> int:
    from kerasllm.export import format_report, verify_export

    report = verify_export(args.path, max_seconds=args.max_seconds)
    print(format_report(report))
    return 0 if report["ok"] else 1


def _add_demo_command(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the default job on the embedded sample",
        description="Train a small Transformer on the embedded English-French sample, evaluate it, export a "
        "TF Serving SavedModel, verify it and translate through it (no ../shared needed).",
    )
    demo.add_argument("--out", default="runs/demo", help="run directory (default runs/demo; resumes if present)")
    demo.add_argument("--base", default="saved_models/translate", help="model base path for the export")
    demo.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from apps.translate import demo

    demo.main(args.out, args.base)
    return 0


def _add_compare_command(subparsers: argparse._SubParsersAction) -> None:
    compare = subparsers.add_parser(
        "compare",
        help="LSTM vs LSTM + attention vs Transformer: same data and budget, one report",
        description="Train the plain LSTM seq2seq, the LSTM with attention and the Transformer on the same corpus, "
        "vocabularies and training-time budget (each a translate run in RUNS_DIR/<corpus>-<preset>, resumed or "
        "reused when present), measure them alike and write report.md, results.json and plots.",
    )
    compare.add_argument(
        "--quick", action="store_true", help="tiny presets on the embedded sample (no ../shared needed): a few minutes"
    )
    compare.add_argument("--corpus", help="registered parallel corpus (default multi30k; sample with --quick)")
    compare.add_argument("--pair", help="language pair (default en-de; en-fr with --quick)")
    compare.add_argument("--test-split", help="split scored in the report (default test2016 for multi30k, else test)")
    compare.add_argument("--minutes", type=float, help="training budget per model (default 60; 1 with --quick)")
    compare.add_argument("--runs-dir", help="where the runs live (default runs; runs/compare-quick with --quick)")
    compare.add_argument(
        "--report",
        help="report directory (default bench/compare/<corpus>-<pair>; runs/compare-quick/report with --quick)",
    )
    compare.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    compare.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from apps.compare.runner import FULL_PRESETS, QUICK_PRESETS, Comparison, run_comparison

    corpus = args.corpus or ("sample" if args.quick else "multi30k")
    pair = args.pair or ("en-fr" if args.quick else "en-de")
    runs_dir = Path(args.runs_dir or ("runs/compare-quick" if args.quick else "runs"))
    run_comparison(
        Comparison(
            corpus=corpus,
            pair=pair,
            test_split=args.test_split or ("test2016" if corpus == "multi30k" else "test"),
            minutes=args.minutes or (1.0 if args.quick else 60.0),
            runs_dir=runs_dir,
            report_dir=Path(args.report or (runs_dir / "report" if args.quick else f"bench/compare/{corpus}-{pair}")),
            presets=QUICK_PRESETS if args.quick else FULL_PRESETS,
            data_dir=args.data_dir,
            command=shlex.join(["kerasllm", *args.argv]),
        )
    )
    return 0


def _add_diagram_command(subparsers: argparse._SubParsersAction) -> None:
    diagram = subparsers.add_parser(
        "diagram",
        help="print a Mermaid flowchart of a preset's model",
        description="Build the model of an app's preset (vocabularies of the config's vocabulary_size) and print "
        "a Mermaid flowchart of its Keras graph: layers, shapes, residual and cross-attention edges. GitHub renders "
        "it inside a ```mermaid block (--markdown).",
    )
    diagram.add_argument("--app", default="translate", choices=sorted(APPS), help="the app (default translate)")
    diagram.add_argument("--config", required=True, help="the app's preset name or a JSON config file")
    diagram.add_argument("--markdown", action="store_true", help="wrap it in a ```mermaid block for a README")
    diagram.add_argument("--collapsed", action="store_true", help="one box per layer, not their insides")
    diagram.set_defaults(func=_run_diagram)


def _run_diagram(args: argparse.Namespace) -> int:
    from kerasllm.diagram import diagram_markdown, mermaid_diagram

    app = importlib.import_module(f"{APPS[args.app]}.app").APP
    config = app.config_class.load(args.config)
    model = app.build_model(config, {name: config.vocabulary_size for name in app.vocabularies})
    draw = diagram_markdown if args.markdown else mermaid_diagram
    print(draw(model, expand=not args.collapsed, title=f"{args.app} {args.config}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasllm",
        description="Train Transformer, GPT and LSTM models with model.fit, evaluate them and export them for TF "
        "Serving; each app (translate, ...) has train, evaluate, export and predict.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('kerasllm').__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo_command(subparsers)
    _add_data_commands(subparsers)
    for package in APPS.values():
        importlib.import_module(f"{package}.cli").register(subparsers)
    _add_diagram_command(subparsers)
    _add_export_commands(subparsers)
    _add_compare_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command line, for reports that print how they were made
    try:
        with commands.distribution_scope(args):
            return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError, ConnectionError, ChildProcessError) as error:
        # Expected user errors (missing corpus, bad arguments, misaligned files): one line, no traceback.
        print(f"kerasllm: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "kerasllm: interrupted (a training run resumes from its last backup with the same --out)", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
