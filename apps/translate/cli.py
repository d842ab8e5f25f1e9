"""`kerasllm translate train | evaluate | export | predict`."""

from __future__ import annotations

import argparse
from pathlib import Path

from apps import commands

DEFAULT_CONFIG = "transformer"
PRESETS = "transformer, lstm_attention, lstm, tiny, tiny_lstm, tiny_lstm_attention"
CTRANSLATE2_SUFFIX = "_ctranslate2"  # the default CTranslate2 directory: the base path with this added


def register(subparsers: argparse._SubParsersAction) -> None:
    translate = subparsers.add_parser(
        "translate",
        help="train, evaluate, export and run translators",
        description="The translation app: train -> evaluate -> export -> predict.",
    )
    sub = translate.add_subparsers(dest="translate_command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train with model.fit (resumes when --out already holds a run)",
        description="Train a translator with model.fit. Running it again with the same --out "
        "resumes from the last backup.",
    )
    commands.add_train_arguments(train, default_config=DEFAULT_CONFIG, presets=PRESETS)
    train.add_argument(
        "--corpus", default="multi30k", help="registered parallel corpus (default multi30k; `sample` needs no data)"
    )
    train.add_argument("--pair", default="en-de", help="source-target languages (default en-de)")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="sacreBLEU and chrF of a trained run on a split",
        description="Decode a split with the run's search settings and print sacreBLEU/chrF with signatures.",
    )
    evaluate.add_argument("--out", required=True, help="run directory")
    evaluate.add_argument("--split", action="append", help="split(s) to score (default val and test2016)")
    evaluate.add_argument("--limit", type=int, help="score only the first N segments")
    _add_search_arguments(evaluate)
    evaluate.add_argument("--data-dir", default=None, help="corpus root")
    evaluate.set_defaults(func=_evaluate)

    export = sub.add_parser(
        "export",
        help="write a TF Serving SavedModel (text in, translations out) or a CTranslate2 model",
        description="Export a trained run to <base>/<version>/ for tensorflow_model_server, or (--format "
        "ctranslate2, Transformer runs only) to a CTranslate2 model directory that `predict --ctranslate2` runs.",
    )
    commands.add_export_arguments(export, app="translate")
    _add_search_arguments(export)
    export.add_argument(
        "--format",
        choices=["saved_model", "ctranslate2"],
        default="saved_model",
        help="saved_model (default): a TF Serving version folder; ctranslate2: a CTranslate2 model directory with "
        "the run's vocabularies and decoding (an LSTM run cannot be converted)",
    )
    export.add_argument(
        "--quantization",
        help="ctranslate2 only: weight type, one of int8, int8_float32, int8_float16, int8_bfloat16, int16, "
        "float16, bfloat16, float32 (default: float32 weights; the bfloat16 ones need PyTorch installed)",
    )
    export.add_argument(
        "--path",
        metavar="DIR",
        help="ctranslate2 only: the directory to write, which must not exist or be empty "
        f"(default: <base>{CTRANSLATE2_SUFFIX}, e.g. saved_models/translate{CTRANSLATE2_SUFFIX})",
    )
    export.set_defaults(func=_export)

    predict = sub.add_parser(
        "predict",
        help="translate sentences from arguments or stdin",
        description="Translate with a run directory (in-process, compiled search), an exported SavedModel or a "
        "CTranslate2 export.",
    )
    commands.add_predict_arguments(predict, what="sentences")
    predict.add_argument(
        "--ctranslate2",
        metavar="DIR",
        help="a directory written by `export --format ctranslate2` (instead of --out / --saved-model); it holds "
        "its vocabularies and decoding settings",
    )
    predict.set_defaults(func=_predict)


def _add_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--search", choices=["beam", "greedy"], help="override the run's search")
    parser.add_argument("--beam-size", type=int, help="override the beam size")


def _train(args: argparse.Namespace) -> int:
    from apps.translate import app
    from apps.translate.config import TranslateConfig

    config = commands.train_config(TranslateConfig, args, DEFAULT_CONFIG)
    app.train(
        config,
        args.out,
        corpus=args.corpus,
        pair=args.pair,
        data_dir=args.data_dir,
        init_from=args.init_from,
        verbose=commands.fit_verbosity(),
    )
    return 0


def _decoding_options(args: argparse.Namespace) -> dict:
    """The run's decoding config with the command line's --search / --beam-size applied, checked."""
    from apps.translate.config import TranslateConfig, check_decoding

    decoding = dict(TranslateConfig.load(f"{args.out}/config.json").decoding)
    if args.search:
        decoding["search"] = args.search
    if args.beam_size:
        decoding["beam_size"] = args.beam_size
    if decoding.get("search") == "greedy":
        decoding = {key: value for key, value in decoding.items() if key not in ("beam_size", "alpha")}
    check_decoding(decoding, "--search/--beam-size")
    return decoding


def _evaluate(args: argparse.Namespace) -> int:
    from apps.translate import app

    decoding = _decoding_options(args)
    for split in args.split or ["val", "test2016"]:
        result = app.evaluate(args.out, split=split, data_dir=args.data_dir, limit=args.limit, decoding=decoding)
        print(
            f"{split}: BLEU {result['bleu']:.2f}  chrF {result['chrf']:.2f}  ({result['segments']} segments, "
            f"{result['seconds']:.1f} s)\n  {result['bleu_signature']}\n  {result['chrf_signature']}"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from apps.translate import app

    if args.format == "ctranslate2":
        if args.version is not None or args.serving_dtype != "float32":
            raise ValueError("--version and --serving-dtype are for --format saved_model; use --path, --quantization")
        path = args.path or Path(args.base).with_name(Path(args.base).name + CTRANSLATE2_SUFFIX)
        print(app.export_ctranslate2(args.out, path, args.quantization, decoding=_decoding_options(args)))
        return 0
    if args.quantization or args.path:
        raise ValueError("--quantization and --path are for --format ctranslate2")
    print(
        app.export(
            args.out,
            args.base,
            version=args.version,
            decoding=_decoding_options(args),
            serving_dtype=commands.serving_dtype(args),
        )
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    texts = commands.read_texts(args, {**commands.MODEL_FLAGS, "ctranslate2": "--ctranslate2 (a CTranslate2 export)"})
    if args.ctranslate2:
        from apps.translate import app

        translations = app.CTranslate2Translator.from_directory(args.ctranslate2)(texts)
    elif args.saved_model:
        import tensorflow as tf

        _loaded, serve = commands.load_serving_signature(args.saved_model)
        translations = [commands.as_text(t) for t in serve(text=tf.constant(texts, tf.string))["translations"].numpy()]
    else:
        from apps.translate import app

        translations = app.Translator.from_run(app.load_run(args.out))(texts)
    for translation in translations:
        print(translation)
    return 0
