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
    pipeline_demo = data_sub.add_parser("demo", help="the data pipeline on the embedded sample",
                                        description="Load the embedded sample, train vocabularies, build the bucketed "
                                        "pipeline and print what it did.")
    pipeline_demo.set_defaults(func=_run_data_demo)
    listing = data_sub.add_parser("list", help="list the registered corpora", description="List the registered corpora, where they are looked for and whether they are present.")
    listing.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    listing.set_defaults(func=_run_data_list)


def _run_data_stats(args: argparse.Namespace) -> int:
    from kerasllm.data import stats

    print(stats.format_stats(stats.corpus_stats(args.name, pair=args.pair, vocab_size=args.vocab_size, data_dir=args.data_dir)))
    return 0


def _run_data_demo(args: argparse.Namespace) -> int:
    from kerasllm.data import demo

    demo.main()
    return 0


def _run_data_list(args: argparse.Namespace) -> int:
    from kerasllm.data import registry

    print(registry.format_listing(data_dir=args.data_dir))
    return 0


def _add_translate_commands(subparsers: argparse._SubParsersAction) -> None:
    translate = subparsers.add_parser("translate", help="train, evaluate, export and run translators",
                                      description="The translation app: train -> evaluate -> export -> predict.")
    sub = translate.add_subparsers(dest="translate_command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train with model.fit (resumes when --out already holds a run)",
                           description="Train a translator with model.fit. Running it again with the same --out "
                           "resumes from the last backup.")
    train.add_argument("--config", default="transformer", help="preset name (transformer, lstm_attention, tiny, ...) or a JSON file")
    train.add_argument("--corpus", default="multi30k", help="registered parallel corpus (default multi30k; `sample` needs no data)")
    train.add_argument("--pair", default="en-de", help="source-target languages (default en-de)")
    train.add_argument("--out", required=True, help="run directory (checkpoints, vocabularies, logs)")
    train.add_argument("--epochs", type=int, help="override the config's epochs")
    train.add_argument("--minutes", type=float, help="override the config's training time budget")
    train.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    train.set_defaults(func=_run_translate_train)

    evaluate = sub.add_parser("evaluate", help="sacreBLEU and chrF of a trained run on a split",
                              description="Decode a split with the run's search settings and print sacreBLEU/chrF with signatures.")
    evaluate.add_argument("--out", required=True, help="run directory")
    evaluate.add_argument("--split", action="append", help="split(s) to score (default val and test2016)")
    evaluate.add_argument("--limit", type=int, help="score only the first N segments")
    evaluate.add_argument("--search", choices=["beam", "greedy"], help="override the config's search")
    evaluate.add_argument("--beam-size", type=int, help="override the beam size")
    evaluate.add_argument("--data-dir", default=None, help="corpus root")
    evaluate.set_defaults(func=_run_translate_evaluate)

    export = sub.add_parser("export", help="write a TF Serving SavedModel (text in, translations out)",
                            description="Export a trained run to <base>/<version>/ for tensorflow_model_server.")
    export.add_argument("--out", required=True, help="run directory")
    export.add_argument("--base", default="saved_models/translate", help="model base path (default saved_models/translate)")
    export.add_argument("--version", type=int, help="version number (default: next free)")
    export.add_argument("--search", choices=["beam", "greedy"], help="override the run's search")
    export.add_argument("--beam-size", type=int, help="override the beam size")
    export.add_argument("--serving-dtype", default="float32",
                        help="dtype policy of the served model (default float32; 'keep' keeps the trained policy)")
    export.set_defaults(func=_run_translate_export)

    predict = sub.add_parser("predict", help="translate sentences from arguments or stdin",
                             description="Translate with a run directory (in-process, compiled search) or an exported SavedModel.")
    predict.add_argument("--out", help="run directory")
    predict.add_argument("--saved-model", help="exported version directory (instead of --out)")
    predict.add_argument("texts", nargs="*", help="sentences (default: one per line on stdin)")
    predict.set_defaults(func=_run_translate_predict)


def _run_translate_train(args: argparse.Namespace) -> int:
    from apps.translate import app
    from apps.translate.config import TranslateConfig

    config = TranslateConfig.load(args.config)
    if args.epochs is not None:
        config.epochs = args.epochs
    if args.minutes is not None:
        config.time_budget_minutes = args.minutes
    # One line per epoch when logging to a file; the live progress bar on a terminal.
    app.train(config, args.out, corpus=args.corpus, pair=args.pair, data_dir=args.data_dir,
              verbose="auto" if sys.stdout.isatty() else 2)
    return 0


def _decoding_options(args: argparse.Namespace) -> dict:
    """The run's decoding config with the command line's --search / --beam-size applied."""
    from apps.translate.config import TranslateConfig

    decoding = dict(TranslateConfig.load(f"{args.out}/config.json").decoding)
    if args.search:
        decoding["search"] = args.search
    if args.beam_size:
        decoding["beam_size"] = args.beam_size
    if decoding.get("search") == "greedy":
        decoding = {key: value for key, value in decoding.items() if key not in ("beam_size", "alpha")}
    return decoding


def _run_translate_evaluate(args: argparse.Namespace) -> int:
    from apps.translate import app

    decoding = _decoding_options(args)
    for split in args.split or ["val", "test2016"]:
        result = app.evaluate(args.out, split=split, data_dir=args.data_dir, limit=args.limit, decoding=decoding)
        print(f"{split}: BLEU {result['bleu']:.2f}  chrF {result['chrf']:.2f}  ({result['segments']} segments, "
              f"{result['seconds']:.1f} s)\n  {result['bleu_signature']}\n  {result['chrf_signature']}")
    return 0


def _run_translate_export(args: argparse.Namespace) -> int:
    from apps.translate import app

    print(app.export(args.out, args.base, version=args.version, decoding=_decoding_options(args),
                     serving_dtype=None if args.serving_dtype == "keep" else args.serving_dtype))
    return 0


def _run_translate_predict(args: argparse.Namespace) -> int:
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    if bool(args.out) == bool(args.saved_model):
        raise ValueError("give exactly one of --out (a run directory) or --saved-model (an exported version)")
    if args.saved_model:
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (kernels the SavedModel needs)

        outputs = tf.saved_model.load(args.saved_model).signatures["serving_default"](text=tf.constant(texts))
        translations = [t.decode("utf-8") for t in outputs["translations"].numpy()]
    else:
        from apps.translate import app

        model, source_tokenizer, target_tokenizer, config, _ = app.load_run(args.out)
        translations = app.Translator(model, source_tokenizer, target_tokenizer, config.decoding)(texts)
    for translation in translations:
        print(translation)
    return 0


def _add_export_commands(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="check exported SavedModels", description="Check exported SavedModels.")
    sub = export.add_subparsers(dest="export_command", required=True, metavar="COMMAND")
    verify = sub.add_parser("verify", help="load and exercise a SavedModel as TF Serving would",
                            description="In a fresh process importing only tensorflow and tensorflow_text: load the "
                            "SavedModel, run it on sample and hostile inputs, list its ops, and fail on ops outside "
                            "core TF + tensorflow-text or on XLA.")
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
        "compare", help="LSTM vs LSTM + attention vs Transformer: same data and budget, one report",
        description="Train the plain LSTM seq2seq, the LSTM with attention and the Transformer on the same corpus, "
        "vocabularies and training-time budget (each a translate run in RUNS_DIR/<corpus>-<preset>, resumed or "
        "reused when present), measure them alike and write report.md, results.json and plots.")
    compare.add_argument("--quick", action="store_true",
                         help="tiny presets on the embedded sample (no ../shared needed): a few minutes")
    compare.add_argument("--corpus", help="registered parallel corpus (default multi30k; sample with --quick)")
    compare.add_argument("--pair", help="language pair (default en-de; en-fr with --quick)")
    compare.add_argument("--test-split", help="split scored in the report (default test2016 for multi30k, else test)")
    compare.add_argument("--minutes", type=float, help="training budget per model (default 60; 1 with --quick)")
    compare.add_argument("--runs-dir", help="where the runs live (default runs; runs/compare-quick with --quick)")
    compare.add_argument("--report", help="report directory (default bench/compare/<corpus>-<pair>; "
                         "runs/compare-quick/report with --quick)")
    compare.add_argument("--data-dir", default=None, help="corpus root (default $KERASLLM_DATA or ../shared/data)")
    compare.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from apps.compare.runner import FULL_PRESETS, QUICK_PRESETS, Comparison, run_comparison

    corpus = args.corpus or ("sample" if args.quick else "multi30k")
    pair = args.pair or ("en-fr" if args.quick else "en-de")
    runs_dir = Path(args.runs_dir or ("runs/compare-quick" if args.quick else "runs"))
    run_comparison(Comparison(
        corpus=corpus, pair=pair, test_split=args.test_split or ("test2016" if corpus == "multi30k" else "test"),
        minutes=args.minutes or (1.0 if args.quick else 60.0), runs_dir=runs_dir,
        report_dir=Path(args.report or (runs_dir / "report" if args.quick else f"bench/compare/{corpus}-{pair}")),
        presets=QUICK_PRESETS if args.quick else FULL_PRESETS, data_dir=args.data_dir,
        command=shlex.join(["kerasllm", *args.argv])))
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
    _add_translate_commands(subparsers)
    _add_export_commands(subparsers)
    _add_compare_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command line, for reports that print how they were made
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError, ConnectionError, ChildProcessError) as error:
        # Expected user errors (missing corpus, bad arguments, misaligned files): one line, no traceback.
        print(f"kerasllm: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
