"""`kerasllm classify train | evaluate | export | predict | baseline`, and `kerasllm classify --quick`."""

from __future__ import annotations

import argparse
from typing import Any

from apps import commands

DEFAULT_CONFIG = "bilstm"
PRESETS = "bilstm, gru, simple_rnn, transformer, tiny_bilstm, tiny_transformer"
CORPORA = "sst2, ag_news, sms_spam, sms_spam_sample"


def register(subparsers: argparse._SubParsersAction) -> None:
    classify = subparsers.add_parser(
        "classify",
        help="train, evaluate, export and run text classifiers (RNN or Transformer)",
        description="The classification app: train -> evaluate -> export -> predict, with an in-house TF-IDF "
        "baseline. `kerasllm classify --quick` runs the whole path on the embedded SMS spam sample in a few minutes.",
    )
    classify.add_argument(
        "--quick",
        action="store_true",
        help="train a tiny BiLSTM and a tiny Transformer on the embedded SMS sample, compare them with the TF-IDF "
        "baseline, export and verify the Transformer, classify through the SavedModel (no ../shared needed)",
    )
    classify.add_argument("--out", default="runs/classify-quick", help="with --quick: where its runs go")
    classify.add_argument("--base", default="saved_models/classify", help="with --quick: model base path")
    classify.set_defaults(func=_quick)
    sub = classify.add_subparsers(dest="classify_command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train with model.fit (resumes when --out already holds a run)",
        description="Train a classifier with model.fit on a corpus's train split (the checkpoint is chosen on its "
        "val split). Running it again with the same --out resumes from the last backup.",
    )
    commands.add_train_arguments(train, default_config=DEFAULT_CONFIG, presets=PRESETS)
    _add_corpus_argument(train)
    train.add_argument(
        "--embeddings",
        metavar="PATH",
        help="start the token embedding from these word vectors (GloVe, word2vec text or binary, plain or gzip; "
        "their dim must be the model's embedding width); overrides the config's embeddings",
    )
    train.add_argument(
        "--freeze-embeddings", action="store_true", help="with --embeddings: keep the token embedding at the vectors"
    )
    train.add_argument(
        "--oov",
        choices=["zeros", "random", "mean"],
        help="with --embeddings: what a token without a vector starts as (default zeros)",
    )
    train.set_defaults(func=_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="accuracy, macro and per-class P/R/F1, MCC and a confusion matrix on a split",
        description="Classify a split through the serving graph (sliding windows over long texts), print the "
        "scores, and write eval_<split>.json and confusion_<split>.png into the run directory.",
    )
    evaluate.add_argument("--out", required=True, help="run directory")
    evaluate.add_argument("--split", action="append", choices=["train", "val", "test"], help="split(s) (default test)")
    _add_aggregate_argument(evaluate)
    evaluate.add_argument("--data-dir", default=None, help="corpus root")
    evaluate.set_defaults(func=_evaluate)

    export = sub.add_parser(
        "export",
        help="write a TF Serving SavedModel (text in; label, probabilities, classes, windows out)",
        description="Export a trained run to <base>/<version>/ for tensorflow_model_server.",
    )
    commands.add_export_arguments(export, app="classify")
    _add_aggregate_argument(export)
    export.set_defaults(func=_export)

    predict = sub.add_parser(
        "predict",
        help="classify texts from arguments or stdin",
        description="Classify with a run directory (in-process, the serving graph) or an exported SavedModel; "
        "prints label, probability and windows used per text, tab-separated.",
    )
    commands.add_predict_arguments(predict, what="texts")
    predict.set_defaults(func=_predict)

    baseline = sub.add_parser(
        "baseline",
        help="the in-house TF-IDF (word 1-2-grams) + logistic regression anchor on a corpus's splits",
        description="Fit TF-IDF + logistic regression on the train split (C chosen on val) and score the test "
        "split: the anchor every neural classifier is compared with. Needs scikit-learn.",
    )
    _add_corpus_argument(baseline)
    baseline.add_argument("--data-dir", default=None, help="corpus root")
    baseline.set_defaults(func=_baseline)


def _add_corpus_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus",
        default="sst2",
        help=f"{CORPORA}, or the path of your own labelled file (.tsv/.csv/.jsonl with columns text and label); "
        "default sst2; sms_spam_sample needs no ../shared",
    )


def _add_aggregate_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aggregate", choices=["mean", "max"], help="override the run's window aggregation")


def _train(args: argparse.Namespace) -> int:
    from apps.classify import app
    from apps.classify.config import ClassifyConfig

    def train(config: ClassifyConfig, run_dir: str, **options: Any) -> Any:
        # The word-vector flags override the config as --epochs does, but a resume refuses a change to them.
        if args.embeddings is not None:
            config.embeddings = args.embeddings
        if args.freeze_embeddings:
            config.embeddings_trainable = False
        if args.oov is not None:
            config.embeddings_oov = args.oov
        config.validate("--embeddings / --freeze-embeddings / --oov")
        return app.train(config, run_dir, **options)

    return commands.train_on_corpus(train, ClassifyConfig, args, DEFAULT_CONFIG)


def format_scores(result: dict) -> str:
    """Two lines: the headline scores, then per-class F1 (and a caveat where the split is not the published one)."""
    per_class = "  ".join(f"{name} F1 {values['f1']:.3f}" for name, values in result["per_class"].items())
    windows = f", {result['windows']['texts_with_several']} read in several windows" if "windows" in result else ""
    lines = [
        f"{result['corpus']} {result['split']}: accuracy {result['accuracy']:.4f}  macro F1 {result['macro_f1']:.4f}  "
        f"MCC {result['mcc']:.4f}  ({result['count']} texts{windows}, {result['seconds']:.1f} s)",
        f"  {per_class}",
    ]
    if "caveat" in result:
        lines.append(f"  note: {result['caveat']}")
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    from apps.classify import app

    for split in args.split or ["test"]:
        print(format_scores(app.evaluate(args.out, split=split, data_dir=args.data_dir, aggregate=args.aggregate)))
    return 0


def _export(args: argparse.Namespace) -> int:
    from apps.classify import app

    print(
        app.export(
            args.out,
            args.base,
            version=args.version,
            aggregate=args.aggregate,
            serving_dtype=commands.serving_dtype(args),
        )
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    texts = commands.read_texts(args)
    if args.saved_model:
        import tensorflow as tf

        _loaded, serve = commands.load_serving_signature(args.saved_model)
        encoded = [text.encode("utf-8") if isinstance(text, str) else text for text in texts]
        outputs = serve(text=tf.constant(encoded, tf.string))
        labels = [commands.as_text(label) for label in outputs["label"].numpy()]
        probabilities, windows = outputs["probabilities"].numpy(), outputs["windows"].numpy()
    else:
        from apps.classify import app

        outputs = app.Classifier.from_run(app.load_run(args.out))(texts)
        labels, probabilities, windows = outputs["label"], outputs["probabilities"], outputs["windows"]
    for label, row, count in zip(labels, probabilities, windows):
        note = "" if count else "\t(no tokens: the training prior)"
        print(f"{label}\t{row.max():.4f}\t{count} window{'s' if count != 1 else ''}{note}")
    return 0


def _baseline(args: argparse.Namespace) -> int:
    from apps.classify.baseline import corpus_baseline
    from apps.classify.datasets import CAVEATS

    result = corpus_baseline(args.corpus, args.data_dir)
    print(
        format_scores(
            {
                **result["scores"],
                "corpus": args.corpus,
                "split": "test",
                "seconds": result["train_seconds"],
                **({"caveat": CAVEATS[args.corpus]} if args.corpus in CAVEATS else {}),
            }
        )
    )
    print(f"  TF-IDF 1-2-grams, {result['features']} features, logistic regression C={result['C']}")
    return 0


def _quick(args: argparse.Namespace) -> int:
    if args.classify_command is None and not args.quick:
        raise ValueError("give a command (train, evaluate, export, predict, baseline) or --quick; see --help")
    from apps.classify import quick

    quick.main(args.out, args.base)
    return 0
