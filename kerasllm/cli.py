"""The `kerasllm` command line. TensorFlow is imported only inside a command, so `--help` is instant."""

from __future__ import annotations

import argparse
import os
import sys


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
    stats.add_argument("--vocab-size", type=int, default=8000, help="WordPiece vocabulary size to train on the train split (default 8000)")
    stats.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    stats.set_defaults(func=_run_data_stats)
    listing = data_sub.add_parser("list", help="list the registered corpora", description="List the registered corpora, where they are looked for and whether they are present.")
    listing.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    listing.set_defaults(func=_run_data_list)


def _run_data_stats(args: argparse.Namespace) -> int:
    from kerasllm.data import stats

    print(stats.format_stats(stats.corpus_stats(args.name, pair=args.pair, vocab_size=args.vocab_size, data_dir=args.data_dir)))
    return 0


def _run_data_list(args: argparse.Namespace) -> int:
    from kerasllm.data import registry

    print(registry.format_listing(data_dir=args.data_dir))
    return 0


def _add_demo_command(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the default job on the embedded sample",
        description="Run the default job on the embedded English-French sample (no ../shared needed).",
    )
    demo.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from kerasllm.data import demo

    demo.main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasllm",
        description="Train Transformer and LSTM seq2seq models with model.fit and export them for TF Serving.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('kerasllm').__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo_command(subparsers)
    _add_data_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as error:
        # Expected user errors (missing corpus, bad arguments, misaligned files): one line, no traceback.
        print(f"kerasllm: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
