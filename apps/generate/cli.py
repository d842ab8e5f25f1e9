"""`kerasllm generate train | evaluate | export | sample`, and `kerasllm generate --quick`."""

from __future__ import annotations

import argparse
import sys

from apps import commands

DEFAULT_CONFIG = "gpt"
PRESETS = "gpt, nanogpt_cpu, lstm, tiny_gpt, tiny_lstm"
CORPORA = "tiny_shakespeare, tatoeba_en"
DEFAULT_NEW_TOKENS = 200


def register(subparsers: argparse._SubParsersAction) -> None:
    generate = subparsers.add_parser(
        "generate",
        help="train, evaluate, export and sample GPT or LSTM/GRU language models",
        description="The text-generation app: train -> evaluate -> export -> sample. `kerasllm generate --quick` "
        "runs the whole path on the embedded Tatoeba English sentences in a few minutes.",
    )
    generate.add_argument(
        "--quick",
        action="store_true",
        help="train a tiny character GPT on the embedded Tatoeba English side, evaluate it, export and verify it, "
        "and sample through the SavedModel (no ../shared needed)",
    )
    generate.add_argument("--out", default="runs/generate-quick", help="with --quick: its run directory")
    generate.add_argument("--base", default="saved_models/generate", help="with --quick: model base path")
    generate.set_defaults(func=_quick)
    sub = generate.add_subparsers(dest="generate_command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train with model.fit on packed blocks (resumes when --out already holds a run)",
        description="Train a language model with model.fit on contiguous blocks of the corpus's train split (new "
        "offsets every pass), AdamW with warmup and cosine decay; validation on the whole val split. Running it "
        "again with the same --out resumes from the last backup.",
    )
    commands.add_train_arguments(train, default_config=DEFAULT_CONFIG, presets=PRESETS)
    train.add_argument(
        "--corpus",
        default="tiny_shakespeare",
        help=f"{CORPORA}, or the path of a UTF-8 text file (first 90%% trains, the rest validates); "
        "default tiny_shakespeare; tatoeba_en needs no ../shared",
    )
    train.set_defaults(func=_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="loss (nats/token), bits per character and perplexity on the whole split",
        description="Score every block of a split and print the loss in nats per token, bits per character and "
        "perplexity, with two samples; writes eval_<split>.json into the run directory.",
    )
    evaluate.add_argument("--out", required=True, help="run directory")
    evaluate.add_argument("--split", default="val", choices=["train", "val"], help="split (default val)")
    evaluate.add_argument("--data-dir", default=None, help="corpus root")
    evaluate.set_defaults(func=_evaluate)

    export = sub.add_parser(
        "export",
        help="write a TF Serving SavedModel that generates (prompt + settings in, text out)",
        description="Export a trained run to <base>/<version>/ for tensorflow_model_server: tokenization, the "
        "cached sampling loop and detokenization all inside serving_default.",
    )
    commands.add_export_arguments(export, app="generate")
    export.set_defaults(func=_export)

    sample = sub.add_parser(
        "sample",
        help="continue a prompt (argument or stdin), streaming the text as it is drawn",
        description="Continue a prompt with a run directory (streamed token by token) or an exported SavedModel. "
        "The prompt is read after a line start; an empty prompt starts a new text.",
    )
    sample.add_argument("--out", help="run directory")
    sample.add_argument("--saved-model", help="exported version directory (instead of --out)")
    sample.add_argument("prompt", nargs="?", default=None, help="the prompt (default: stdin)")
    sample.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="tokens to generate (default 200, or what the model's context allows)",
    )
    sample.add_argument("--temperature", type=float, default=0.8, help="softmax temperature (default 0.8)")
    sample.add_argument("--top-k", type=int, default=None, help="draw among the k most likely tokens")
    sample.add_argument("--top-p", type=float, default=None, help="draw among the tokens holding probability p")
    sample.add_argument("--seed", type=int, default=0, help="same seed, same text (default 0)")
    sample.add_argument("--greedy", action="store_true", help="the most likely token at every step")
    sample.set_defaults(func=_sample)


def _train(args: argparse.Namespace) -> int:
    from apps.generate import app
    from apps.generate.config import GenerateConfig

    return commands.train_on_corpus(app.train, GenerateConfig, args, DEFAULT_CONFIG)


def format_scores(result: dict) -> str:
    return (
        f"{result['corpus']} {result['split']}: loss {result['loss_nats_per_token']:.4f} nats/token  "
        f"{result['bits_per_character']:.4f} bits/char  perplexity {result['perplexity']:.2f}  "
        f"({result['tokens_scored']} tokens, {result['seconds']:.1f} s)"
    )


def _evaluate(args: argparse.Namespace) -> int:
    from apps.generate import app

    result = app.evaluate(args.out, split=args.split, data_dir=args.data_dir)
    print(format_scores(result))
    for temperature, text in result["samples"].items():
        print(f"--- sample at temperature {temperature}\n{text}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from apps.generate import app

    print(app.export(args.out, args.base, version=args.version, serving_dtype=commands.serving_dtype(args)))
    return 0


def _sample(args: argparse.Namespace) -> int:
    if bool(args.out) == bool(args.saved_model):
        raise ValueError("give exactly one of --out (a run directory) or --saved-model (an exported version)")
    prompt = args.prompt if args.prompt is not None else sys.stdin.buffer.read().decode("utf-8", errors="replace")
    if args.saved_model:
        return _sample_saved_model(args, prompt)
    from apps.generate import app

    generator = app.Generator(app.load_run(args.out))
    options = dict(
        max_new_tokens=min(DEFAULT_NEW_TOKENS, generator.context - 1)
        if args.max_new_tokens is None
        else args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        greedy=args.greedy,
    )
    app.check_sampling(
        options["max_new_tokens"], generator.context, 1.0 if args.greedy else args.temperature, args.top_k, args.top_p
    )
    if generator.truncates(prompt, options["max_new_tokens"]):
        print("(the prompt is longer than the context: only its end is read)", file=sys.stderr)
    sys.stdout.write(prompt)
    for piece in generator.stream(prompt, **options):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _sample_saved_model(args: argparse.Namespace, prompt: str) -> int:
    import tensorflow as tf

    _loaded, serve = commands.load_serving_signature(args.saved_model)
    outputs = serve(
        prompt=tf.constant([prompt.encode("utf-8")]),
        max_new_tokens=tf.constant([DEFAULT_NEW_TOKENS if args.max_new_tokens is None else args.max_new_tokens]),
        temperature=tf.constant([0.0 if args.greedy else args.temperature]),
        top_k=tf.constant([args.top_k or 0]),
        top_p=tf.constant([args.top_p or 1.0]),
        seed=tf.constant([args.seed]),
    )
    if outputs["truncated"].numpy()[0]:
        print("(the prompt is longer than the context: only its end is read)", file=sys.stderr)
    print(prompt + commands.as_text(outputs["text"].numpy()[0]))
    return 0


def _quick(args: argparse.Namespace) -> int:
    if args.generate_command is None and not args.quick:
        raise ValueError("give a command (train, evaluate, export, sample) or --quick; see --help")
    from apps.generate import quick

    quick.main(args.out, args.base)
    return 0
