"""`kerasllm word2vec train | evaluate | export | neighbours`, and `kerasllm word2vec --quick`."""

from __future__ import annotations

import argparse

from apps import commands

DEFAULT_CONFIG = "skipgram"
PRESETS = "skipgram, cbow, tiny"
CORPORA = "english (all local English text), english-train (training splits only), sample"
FORMATS = "glove, word2vec, word2vec-binary, projector"


def register(subparsers: argparse._SubParsersAction) -> None:
    word2vec = subparsers.add_parser(
        "word2vec",
        help="train, evaluate and export skip-gram / CBOW word vectors",
        description="The word-vector app: train -> evaluate -> export -> neighbours. `kerasllm word2vec --quick` "
        "runs the whole path on the embedded Tatoeba English sentences in about a minute.",
    )
    word2vec.add_argument(
        "--quick",
        action="store_true",
        help="train tiny skip-gram vectors on the embedded Tatoeba English side, score them, write them as "
        "GloVe text, export and verify the neighbours SavedModel (no ../shared needed)",
    )
    word2vec.add_argument("--out", default="runs/word2vec-quick", help="with --quick: its run directory")
    word2vec.add_argument("--base", default="saved_models/word2vec", help="with --quick: model base path")
    word2vec.set_defaults(func=_quick)
    sub = word2vec.add_subparsers(dest="word2vec_command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train with model.fit on skip-gram / CBOW examples made in tf.data (resumes an interrupted run)",
        description="Train word vectors with model.fit: word tokens, frequency subsampling, dynamic windows and "
        "unigram^0.75 negatives drawn afresh every epoch in tf.data; SGD with word2vec's linearly decaying rate. "
        "Running it again with the same --out resumes from the last backup.",
    )
    commands.add_train_arguments(train, default_config=DEFAULT_CONFIG, presets=PRESETS)
    train.add_argument(
        "--corpus", default="english", help=f"{CORPORA}, or the path of a UTF-8 text file; default english"
    )
    train.set_defaults(func=_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="WordSim-353 and SimLex-999 Spearman, Google analogy accuracy, with coverage",
        description="Score a run's vectors on the benchmarks shipped in the gensim wheel; writes "
        "eval_benchmarks.json into the run directory.",
    )
    evaluate.add_argument("--out", required=True, help="run directory")
    evaluate.add_argument(
        "--restrict-vocab", type=int, default=30000, help="analogy answers among the N most frequent words"
    )
    evaluate.set_defaults(func=_evaluate)

    export = sub.add_parser(
        "export",
        help="write the vectors (GloVe / word2vec text or binary, TensorBoard projector) or a neighbours SavedModel",
        description="With --format, write the vectors to --path. Without it, export the TF Serving SavedModel "
        "whose serving_default maps words to their nearest neighbours, scores and vectors.",
    )
    commands.add_export_arguments(export, app="word2vec")
    export.add_argument("--format", default=None, help=f"vector file format: {FORMATS}")
    export.add_argument("--path", default=None, help="with --format: the file (or, for projector, the folder)")
    export.set_defaults(func=_export)

    neighbours = sub.add_parser(
        "neighbours",
        help="the nearest words of each word, or an analogy a : b :: c : ?",
        description="Print each word's nearest neighbours by cosine similarity; with --analogy A B C, the words "
        "closest to B - A + C (3CosAdd).",
    )
    neighbours.add_argument("--out", required=True, help="run directory")
    neighbours.add_argument("words", nargs="*", help="words to look up")
    neighbours.add_argument("--analogy", nargs=3, metavar=("A", "B", "C"), help="A is to B as C is to ?")
    neighbours.add_argument("--topn", type=int, default=10, help="neighbours per word (default 10)")
    neighbours.set_defaults(func=_neighbours)


def _train(args: argparse.Namespace) -> int:
    from apps.word2vec import app
    from apps.word2vec.config import Word2VecConfig

    return commands.train_on_corpus(app.train, Word2VecConfig, args, DEFAULT_CONFIG)


def format_scores(result: dict) -> str:
    lines = []
    for name in ("wordsim353", "simlex999"):
        score = result[name]
        lines.append(f"{name}: Spearman {score['spearman']:.4f} on {score['used']}/{score['total']} pairs")
    analogies = result["analogies"]
    lines.append(
        f"analogies: accuracy {analogies['accuracy']:.4f} on {analogies['used']}/{analogies['total']} questions "
        f"(semantic {analogies['semantic']['accuracy']:.4f}, syntactic {analogies['syntactic']['accuracy']:.4f})"
    )
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    from apps.word2vec import app

    print(format_scores(app.evaluate(args.out, args.restrict_vocab)))
    return 0


def _export(args: argparse.Namespace) -> int:
    from apps.word2vec import app

    if args.format is None:
        print(app.runner.export(app.APP, args.out, args.base, version=args.version))
        return 0
    if args.path is None:
        raise ValueError("--format needs --path: the file (or projector folder) to write")
    print(app.export_vectors(args.out, args.path, args.format))
    return 0


def _neighbours(args: argparse.Namespace) -> int:
    from apps.word2vec import app

    if not args.words and not args.analogy:
        raise ValueError("give words to look up, or --analogy A B C")
    if args.topn < 1:
        raise ValueError(f"--topn must be at least 1, got {args.topn}")
    vectors = app.load_vectors(args.out)
    for word in (word.lower() for word in args.words):
        found = vectors.most_similar(word, topn=args.topn) if word in vectors else None
        print(f"{word}: {_listing(found) if found else 'not in the vocabulary'}")
    if args.analogy:
        a, b, c = (word.lower() for word in args.analogy)
        missing = [word for word in (a, b, c) if word not in vectors]
        if missing:
            raise ValueError(f"not in the vocabulary: {', '.join(missing)}")
        unit = vectors.normalized()
        target = unit.vector(b) - unit.vector(a) + unit.vector(c)
        print(f"{a} : {b} :: {c} : ? {_listing(unit.most_similar(target, topn=args.topn, exclude=(a, b, c)))}")
    return 0


def _listing(found: list[tuple[str, float]]) -> str:
    return ", ".join(f"{word} {score:.3f}" for word, score in found)


def _quick(args: argparse.Namespace) -> int:
    if args.word2vec_command is None and not args.quick:
        raise ValueError("give a command (train, evaluate, export, neighbours) or --quick; see --help")
    from apps.word2vec import quick

    quick.main(args.out, args.base)
    return 0
