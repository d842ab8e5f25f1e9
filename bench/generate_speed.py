"""Greedy text generation tokens/s: our GPT's compiled cached loop vs keras-hub's GPT2CausalLM.generate() and a
no-cache loop, at the same shape, in one process.

    python bench/generate_speed.py [--vocabulary-size 69] [--num-layers 4] [--num-heads 4] [--hidden-dim 128]
                                   [--intermediate-dim 512] [--max-length 320] [--prompt-length 16]
                                   [--new-tokens 256] [--batch-sizes 1,16] [--repeats 5] [--no-cache-bucket 32]
                                   [--intra-op-threads N] [--out bench/generate/speed.json]

Every engine starts from the same random prompts of `--prompt-length` tokens and emits exactly `--new-tokens`
greedy tokens per row (no end token can stop it early), so tokens/s (new tokens × batch / seconds) compare like
for like. Weights are random; the default shape is the character-level GPT's (65 Shakespeare characters + 4
special tokens). Engines:

- ours, XLA: `compile_search(generate, model, search="greedy", end_id=-1)`, the whole loop one XLA program;
- ours, graph: the same with `jit_compile=False, static_shapes=False`, as a SavedModel runs it;
- keras-hub: `keras_hub.models.GPT2CausalLM` (no preprocessor) on a `GPT2Backbone` of the same shape, compiled
  with `sampler="greedy"`, `generate({"token_ids", "padding_mask"}, stop_token_ids=None)` over a prompt buffer of
  prompt + new tokens; once with the `jit_compile` that `compile()` resolves to (its default, printed) and once
  with the other setting;
- no cache: every step re-runs the backbone over the whole prefix and projects only the last position to logits
  (nanoGPT's inference loop). To make it as fast as it reasonably gets, the prefix is cut into buckets of
  `--no-cache-bucket` columns: for each bucket width W one XLA program loops on device over the steps whose
  prefix fits in W, re-running the backbone on the [B, W] buffer (causal attention makes the columns past the
  prefix irrelevant), so there is one compile per bucket and no Python call per token.

Ours and the no-cache loop run the same model, so they must emit the same tokens (checked and printed).
Timed calls alternate between the engines (round robin, `--repeats` rounds), so background load hits them alike;
the fastest call of each counts, and the JSON keeps every time and the median too. The first call of each engine
at each batch size (tracing and compilation) is timed on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from decode_speed import cpu_description  # noqa: E402

from kerasllm.decoding import compile_search, generate  # noqa: E402
from kerasllm.layers import tied_logits  # noqa: E402
from kerasllm.tasks import CausalLM  # noqa: E402

PAD_ID = 0
# The lowest id that is not a special token: prompts are drawn from the ordinary characters.
FIRST_CHARACTER_ID = 4


def no_cache_generator(model: CausalLM, new_tokens: int, bucket: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """Greedy continuation that re-runs the backbone over the whole prefix at every step, compiled per bucket.

    Returns `decode(prompt_tokens [B, P]) -> tokens [B, new_tokens]`. Like our searches it never emits the pad id
    (fed back, it would be masked as padding).
    """
    embedding = model.backbone.token_embedding
    vocabulary = tf.range(model.vocabulary_size)

    def bucket_program(width: int) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
        positions = tf.range(width)

        # One function per width, so each traces (and XLA-compiles) once per batch size.
        @tf.function(jit_compile=True, reduce_retracing=False)
        def run(tokens, start, stop):
            def body(index, tokens):
                hidden = model.backbone(tokens, training=False)
                # nanoGPT's inference: only the last prefix position goes through the output projection.
                logits = tied_logits(embedding, tf.gather(hidden, index - 1, axis=1))
                logits = tf.where(vocabulary == PAD_ID, -1e9, logits)
                next_tokens = tf.argmax(logits, axis=-1, output_type=tf.int32)
                tokens = tf.where(positions[None, :] == index, next_tokens[:, None], tokens)
                return index + 1, tokens

            _, tokens = tf.while_loop(lambda index, tokens: index < stop, body, (start, tokens))
            return tokens

        return run

    programs: dict[int, Callable] = {}

    def decode(prompt_tokens: tf.Tensor) -> tf.Tensor:
        prompt_length = prompt_tokens.shape[1]
        total = prompt_length + new_tokens
        tokens = tf.pad(prompt_tokens, [[0, 0], [0, total - prompt_length]])
        index = prompt_length
        while index < total:
            # Column `index` is written from the prefix before it, so a bucket of width W serves indices < W.
            width = min(total, (index // bucket + 1) * bucket)
            if width not in programs:
                programs[width] = bucket_program(width)
            head = programs[width](tokens[:, :width], tf.constant(index), tf.constant(width))
            tokens = tf.concat([head, tokens[:, width:]], axis=1)
            index = width
        return tokens[:, prompt_length:]

    return decode


def build_models(args: argparse.Namespace) -> tuple[CausalLM, keras_hub.models.GPT2Backbone]:
    keras.utils.set_random_seed(0)
    ours = CausalLM(
        vocabulary_size=args.vocabulary_size,
        num_layers=args.num_layers,
        hidden_dim=args.hidden_dim,
        num_heads=args.num_heads,
        intermediate_dim=args.intermediate_dim,
        max_length=args.max_length,
    )
    hub_backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=args.vocabulary_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=args.intermediate_dim,
        max_sequence_length=args.max_length,
    )
    return ours, hub_backbone


def hub_engine(backbone: keras_hub.models.GPT2Backbone, jit_compile: bool | None) -> keras_hub.models.GPT2CausalLM:
    """A GPT2CausalLM over `backbone`; `jit_compile=None` leaves `compile()`'s default."""
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    lm.compile(sampler="greedy", **({} if jit_compile is None else {"jit_compile": jit_compile}))
    return lm


def time_call(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabulary-size", type=int, default=69, help="token ids (default 69: 65 characters + 4)")
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--intermediate-dim", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=320, help="the models' positions (default 320)")
    parser.add_argument("--prompt-length", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens generated per row (default 256)")
    parser.add_argument("--batch-sizes", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the fastest call of each engine counts")
    parser.add_argument("--no-cache-bucket", type=int, default=32, help="prefix width step of the no-cache loop")
    parser.add_argument("--intra-op-threads", type=int, default=0, help="threads per op (0: TensorFlow's default)")
    parser.add_argument("--out", default="bench/generate/speed.json", help="JSON results file")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)  # must precede any op
    # The no-cache loop's bucket programs share one Python function body, which TF counts as retracing.
    tf.get_logger().addFilter(lambda record: "triggered tf.function retracing" not in record.getMessage())
    total = args.prompt_length + args.new_tokens
    if total > args.max_length:
        parser.error(f"--prompt-length + --new-tokens ({total}) exceeds --max-length ({args.max_length})")
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]

    ours, hub_backbone = build_models(args)
    options = dict(max_new_tokens=args.new_tokens, end_id=-1, search="greedy", max_length=args.max_length)
    ours_xla = compile_search(generate, ours, jit_compile=True, **options)
    ours_graph = compile_search(generate, ours, jit_compile=False, static_shapes=False, **options)
    no_cache = no_cache_generator(ours, args.new_tokens, args.no_cache_bucket)
    hub_default = hub_engine(hub_backbone, None)
    hub_default_jit = bool(hub_default.jit_compile)
    hub_other = hub_engine(hub_backbone, not hub_default_jit)
    hub_models = (
        {"hub_xla": hub_default, "hub_graph": hub_other}
        if hub_default_jit
        else {"hub_xla": hub_other, "hub_graph": hub_default}
    )
    default = " (its default)"
    hub_names = {
        "hub_xla": "keras-hub GPT2CausalLM, XLA" + (default if hub_default_jit else ""),
        "hub_graph": "keras-hub GPT2CausalLM, graph" + ("" if hub_default_jit else default),
    }

    cpu = cpu_description()
    print(f"CPU: {cpu}; intra-op threads: {args.intra_op_threads or 'default'}")
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, keras-hub {keras_hub.__version__}; "
        f"keras-hub compile() default jit_compile={hub_default_jit}"
    )
    print(
        f"shape: vocabulary {args.vocabulary_size}, {args.num_layers} layers, {args.num_heads} heads, hidden "
        f"{args.hidden_dim}, intermediate {args.intermediate_dim}, max length {args.max_length}; params ours "
        f"{ours.count_params():,}, keras-hub {hub_backbone.count_params():,}; random weights, float32"
    )
    print(
        f"prompt {args.prompt_length} tokens + {args.new_tokens} new, greedy; fastest of {args.repeats} interleaved "
        f"calls; no-cache buckets of {args.no_cache_bucket} columns"
    )

    names = {
        "ours_xla": "ours, XLA (compile_search)",
        "ours_graph": "ours, graph (as a SavedModel runs)",
        **hub_names,
        "no_cache": "no cache (re-run prefix), XLA per bucket",
    }
    rng = np.random.default_rng(0)
    results = []
    print(
        f"\n{'batch':>5}  {'engine':<44} {'first call s':>12} {'best s':>8} {'tokens/s':>9} "
        f"{'ours XLA /':>10} {'vs no cache':>11}"
    )
    print(f"{'':>5}  (ours XLA / = ours XLA's tokens/s over the row's; vs no cache = the row's over no cache's)")
    for batch in batch_sizes:
        prompt_tokens = rng.integers(FIRST_CHARACTER_ID, args.vocabulary_size, (batch, args.prompt_length))
        prompt = tf.constant(prompt_tokens, tf.int32)
        hub_inputs = {
            "token_ids": tf.pad(prompt, [[0, 0], [0, args.new_tokens]]),
            "padding_mask": tf.sequence_mask(tf.fill([batch], args.prompt_length), total),
        }

        def run_hub(lm, hub_inputs=hub_inputs):
            return lm.generate(dict(hub_inputs), stop_token_ids=None)["token_ids"][:, args.prompt_length :]

        engines = {
            "ours_xla": lambda prompt=prompt: ours_xla(prompt)["tokens"].numpy(),
            "ours_graph": lambda prompt=prompt: ours_graph(prompt)["tokens"].numpy(),
            "hub_xla": lambda: run_hub(hub_models["hub_xla"]),
            "hub_graph": lambda: run_hub(hub_models["hub_graph"]),
            "no_cache": lambda prompt=prompt: no_cache(prompt).numpy(),
        }
        first, outputs = {}, {}
        for key, engine in engines.items():
            first[key], outputs[key] = time_call(engine)
            if outputs[key].shape != (batch, args.new_tokens):
                raise RuntimeError(f"{key} returned {outputs[key].shape}, not {batch} rows of {args.new_tokens}")
        if not (outputs["ours_xla"] != PAD_ID).all():
            raise RuntimeError("ours stopped early: a row has fewer than --new-tokens tokens")
        same = {key: float((outputs[key] == outputs["ours_xla"]).mean()) for key in ("ours_graph", "no_cache")}
        times = {key: [] for key in engines}
        for _ in range(args.repeats):
            for key, engine in engines.items():
                times[key].append(time_call(engine)[0])
        generated = batch * args.new_tokens
        rates = {key: generated / min(values) for key, values in times.items()}
        for key in engines:
            print(
                f"{batch:>5}  {names[key]:<44} {first[key]:>12.2f} {min(times[key]):>8.3f} {rates[key]:>9,.0f} "
                f"{rates['ours_xla'] / rates[key]:>9.2f}x {rates[key] / rates['no_cache']:>10.1f}x"
            )
        print(
            f"{'':>5}  same tokens as ours XLA: ours graph {same['ours_graph']:.1%}, no cache {same['no_cache']:.1%}; "
            f"ours XLA / keras-hub XLA {rates['ours_xla'] / rates['hub_xla']:.2f}x, ours graph / keras-hub graph "
            f"{rates['ours_graph'] / rates['hub_graph']:.2f}x"
        )
        results.append(
            {
                "batch_size": batch,
                "new_tokens": generated,
                "engines": {
                    key: {
                        "name": names[key],
                        "first_call_seconds": first[key],
                        "seconds": times[key],
                        "best_seconds": min(times[key]),
                        "median_seconds": statistics.median(times[key]),
                        "tokens_per_second": rates[key],
                    }
                    for key in engines
                },
                "ratios": {
                    "ours_xla_over_hub_xla": rates["ours_xla"] / rates["hub_xla"],
                    "ours_xla_over_hub_graph": rates["ours_xla"] / rates["hub_graph"],
                    "ours_graph_over_hub_graph": rates["ours_graph"] / rates["hub_graph"],
                    "ours_xla_over_no_cache": rates["ours_xla"] / rates["no_cache"],
                    "ours_graph_over_no_cache": rates["ours_graph"] / rates["no_cache"],
                },
                "same_tokens_as_ours_xla": same,
            }
        )

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "machine": cpu,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "keras_hub": keras_hub.__version__},
        "settings": vars(args),
        "keras_hub_default_jit_compile": hub_default_jit,
        "statistic": f"fastest of {args.repeats} interleaved calls (median kept too)",
        "parameters": {"ours": ours.count_params(), "keras_hub": hub_backbone.count_params()},
        "results": results,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
