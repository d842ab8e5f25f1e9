"""Training throughput of kerasllm's Transformer against the same model built from keras-hub layers.

    python bench/train_throughput.py [--steps N] [--warmup N]
    python bench/train_throughput.py --ablate          # where a step of ours goes
    python bench/train_throughput.py --preset NAME     # jit x dtype policy for a translate preset

Both models have the same shape (vocab 8000, hidden_dim 256, intermediate_dim 1024, 8 heads, 3 + 3 layers, learned
positions, dropout 0.1, float32 output projection), get the same random batch (64 x 64 source and target ids), the
same optimizer (Adam) and the same loss (SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)), and are
measured in the same run, with and without `jit_compile` and with and without `mixed_bfloat16`.

tokens/s counts target tokens (batch x target length) per second of `train_on_batch`, from the fastest of the
`--steps` timed steps (the least disturbed by other processes on a shared machine), after `--warmup` steps that
include compilation; the two models' timed steps alternate, so a passing load hits both alike.

Model FLOP/s is an estimate, 6 x parameters x target tokens per second (the usual forward + backward rule of
thumb), counting the parameters that multiply, i.e. not the two token/position embedding tables, which are looked
up; it ignores attention's own score FLOPs (small at length 64). It is compared with the FLOP/s of a large matmul
in the row's compute dtype (float32 or bfloat16), measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasllm.models import Transformer  # noqa: E402

VOCABULARY, HIDDEN_DIM, INTERMEDIATE_DIM, HEADS, LAYERS, BATCH, LENGTH, DROPOUT = 8000, 256, 1024, 8, 3, 64, 64, 0.1


def ours(vocabulary: int = VOCABULARY, layers: int = LAYERS) -> keras.Model:
    return Transformer(
        vocabulary,
        vocabulary,
        layers,
        layers,
        hidden_dim=HIDDEN_DIM,
        num_heads=HEADS,
        intermediate_dim=INTERMEDIATE_DIM,
        dropout=DROPOUT,
        max_length=LENGTH,
        position="learned",
    )


def keras_hub_transformer() -> keras.Model:
    """The same architecture from keras-hub layers, wired as keras-hub's docs and the keras-io NMT example do."""
    encoder_tokens = keras.Input((None,), dtype="int32", name="encoder_tokens")
    decoder_tokens = keras.Input((None,), dtype="int32", name="decoder_tokens")
    encoder_mask, decoder_mask = keras.ops.not_equal(encoder_tokens, 0), keras.ops.not_equal(decoder_tokens, 0)
    x = keras_hub.layers.TokenAndPositionEmbedding(VOCABULARY, LENGTH, HIDDEN_DIM)(encoder_tokens)
    x = keras.layers.Dropout(DROPOUT)(x)
    for _ in range(LAYERS):
        x = keras_hub.layers.TransformerEncoder(INTERMEDIATE_DIM, HEADS, dropout=DROPOUT)(x, padding_mask=encoder_mask)
    y = keras_hub.layers.TokenAndPositionEmbedding(VOCABULARY, LENGTH, HIDDEN_DIM)(decoder_tokens)
    y = keras.layers.Dropout(DROPOUT)(y)
    for _ in range(LAYERS):
        y = keras_hub.layers.TransformerDecoder(INTERMEDIATE_DIM, HEADS, dropout=DROPOUT)(
            y, x, decoder_padding_mask=decoder_mask, encoder_padding_mask=encoder_mask
        )
    logits = keras.layers.Dense(VOCABULARY, dtype="float32")(y)
    return keras.Model((encoder_tokens, decoder_tokens), logits)


def tokens_per_second(
    builders: dict, policy: str, jit_compile: bool, steps: int, warmup: int, id_range: int = VOCABULARY
) -> dict:
    """Train every model on the same batch, alternating their timed steps so that any load from other processes
    falls on all of them alike; returns {name: (tokens/s of the fastest step, parameter count)}."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    source, target = (tf.constant(rng.integers(4, id_range, size=(BATCH, LENGTH)), tf.int32) for _ in range(2))
    models = {}
    for name, build in builders.items():
        keras.utils.set_random_seed(0)
        models[name] = build()
        models[name].compile(
            optimizer=keras.optimizers.Adam(1e-4),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
            jit_compile=jit_compile,
        )
        for _ in range(warmup):
            models[name].train_on_batch((source, target), target)
    step_times = {name: [] for name in models}
    for _ in range(steps):
        for name, model in models.items():
            start = time.perf_counter()
            loss = model.train_on_batch((source, target), target)
            step_times[name].append(time.perf_counter() - start)
            assert np.isfinite(loss), name
    keras.mixed_precision.set_global_policy("float32")
    return {name: (BATCH * LENGTH / min(step_times[name]), models[name].count_params()) for name in models}


def matmul_flops_per_second(dtype: str, size: int = 2048, repeats: int = 10) -> float:
    a = tf.cast(tf.random.normal((size, size)), dtype)
    matmul = tf.function(lambda a: tf.matmul(a, a), jit_compile=True)
    matmul(a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = matmul(a)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def ablate(steps: int, warmup: int) -> None:
    """Step time of our model with the vocabulary-sized work shrunk, then with the layers removed."""
    variants = {"full": ours, "vocabulary 64": lambda: ours(vocabulary=64), "0+0 layers": lambda: ours(layers=0)}
    rates = tokens_per_second(variants, "float32", False, steps, warmup, id_range=64)
    milliseconds = {name: 1000 * BATCH * LENGTH / rate for name, (rate, _) in rates.items()}
    for name, value in milliseconds.items():
        print(f"{name:<14} {value:7.0f} ms per step (float32, no jit)")
    full = milliseconds["full"]
    print(
        f"vocabulary-sized work (output projection, softmax, loss, embeddings): ~{(full - milliseconds['vocabulary 64']) / full:.0%}"
        f" of a step; the 3+3 layers: ~{(full - milliseconds['0+0 layers']) / full:.0%}"
    )


def settings(preset: str, steps: int, warmup: int) -> None:
    """Which of jit_compile x dtype policy trains a translate preset's model fastest here (vs float32, no jit)."""
    from apps.translate import app
    from apps.translate.config import TranslateConfig

    config = TranslateConfig.load(preset)
    print(
        f"preset {preset!r} ({config.model}, {config.model_args}), vocabularies {VOCABULARY}, batch {BATCH} x "
        f"length {LENGTH}, fastest of {steps} steps after {warmup} warmup steps"
    )
    baseline = None
    for jit_compile in (False, True):
        for policy in ("float32", "mixed_bfloat16"):
            # The policy goes to the model's constructor, as in training, and to the global policy this script sets.
            policy_config = dataclasses.replace(config, mixed_precision=policy)
            build = {
                preset: lambda c=policy_config: app.APP.build_model(c, {"source": VOCABULARY, "target": VOCABULARY})
            }
            rate, _ = tokens_per_second(build, policy, jit_compile, steps, warmup)[preset]
            baseline = baseline or rate
            print(f"jit {str(jit_compile):<5} {policy:<15} {rate:>8,.0f} tokens/s  {rate / baseline:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per row (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first, including compilation (default 2)")
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="instead: where a step of ours goes (full model, 64-token vocabulary, no layers)",
    )
    parser.add_argument(
        "--preset",
        help="instead: time a translate preset's model (e.g. lstm_attention) under each jit / dtype-policy setting",
    )
    args = parser.parse_args()
    if args.preset:
        settings(args.preset, args.steps, args.warmup)
        return
    if args.ablate:
        ablate(args.steps, args.warmup)
        return

    peaks = {"float32": matmul_flops_per_second("float32"), "mixed_bfloat16": matmul_flops_per_second("bfloat16")}
    for policy, peak in peaks.items():
        print(f"2048x2048 matmul, {policy.removeprefix('mixed_')} (XLA): {peak / 1e9:.1f} GFLOP/s")
    print(f"batch {BATCH} x length {LENGTH}, {args.steps} timed steps after {args.warmup} warmup steps\n")
    header = (
        f"{'model':<10} {'jit':<5} {'policy':<15} {'params':>10} {'tokens/s':>10} {'GFLOP/s*':>9} "
        f"{'of matmul':>9} {'ours/hub':>8}"
    )
    print(header)
    print("-" * len(header))
    for jit_compile in (False, True):
        for policy in ("float32", "mixed_bfloat16"):
            builders = {"keras-hub": keras_hub_transformer, "kerasllm": ours}
            results = tokens_per_second(builders, policy, jit_compile, args.steps, args.warmup)
            for name, (rate, params) in results.items():
                flops = 6 * (params - 2 * (VOCABULARY + LENGTH) * HIDDEN_DIM) * rate
                ratio = f"{rate / results['keras-hub'][0]:.2f}x" if name == "kerasllm" else ""
                print(
                    f"{name:<10} {str(jit_compile):<5} {policy:<15} {params:>10,} {rate:>10,.0f} "
                    f"{flops / 1e9:>9.1f} {flops / peaks[policy]:>9.0%} {ratio:>8}",
                    flush=True,
                )
    print("\n* estimated as 6 x (params - embedding tables) x target tokens/s")


if __name__ == "__main__":
    main()
