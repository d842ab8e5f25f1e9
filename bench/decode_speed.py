"""Greedy decoding tokens/s: compiled cached loop vs re-running the model on the prefix (TF tutorial),
and the exported SavedModel's latency for a 20-word sentence at batch 1.

    python bench/decode_speed.py [--run RUN_DIR] [--new-tokens 64] [--repeats 3] [--latency-calls 50]
                                 [--intra-op-threads N]

With --run (a Transformer or an LSTM run), the trained run's model is used and exported for the latency
rows: beam search as configured, in float32 (the export default) and, for a mixed-precision run, in the
dtype policy it was trained in; and greedy in float32. Without it, a randomly initialised Transformer of the
`transformer` preset's shape is used and the latency part is skipped. Both decoders emit the same tokens
(greedy on the same model), so tokens/s compare like for like.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from apps.translate import app  # noqa: E402
from apps.translate.config import TranslateConfig  # noqa: E402
from kerasllm.data.tokenizer import END_ID, PAD_ID, START_ID  # noqa: E402
from kerasllm.decoding import compile_search, greedy_search  # noqa: E402
from kerasllm.export import layer_dtype_policies  # noqa: E402

SENTENCE = "A young man in a red jacket is standing next to a blue car on a busy city street today."


def no_cache_decoder(model: keras.Model):
    """The TF tutorial's loop: every step re-runs encoder and decoder over the whole prefix."""
    step = tf.function(
        lambda source, prefix: model((source, prefix), training=False)[:, -1],
        input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2,
    )

    def decode(source, new_tokens: int):
        prefix = tf.fill([tf.shape(source)[0], 1], START_ID)
        finished = tf.zeros([tf.shape(source)[0]], tf.bool)
        for _ in range(new_tokens):
            logits = step(source, prefix)
            vocabulary = tf.range(tf.shape(logits)[-1])
            logits = tf.where((vocabulary == PAD_ID) | (vocabulary == START_ID), -1e9, logits)  # as our searches do
            next_tokens = tf.where(finished, PAD_ID, tf.argmax(logits, -1, output_type=tf.int32))
            prefix = tf.concat([prefix, next_tokens[:, None]], axis=1)
            finished |= next_tokens == END_ID
            if bool(tf.reduce_all(finished)):
                break
        return prefix[:, 1:]

    return decode


def cpu_description() -> str:
    """The CPU model and its widest SIMD: latencies are absolute, and they differ across CPUs (bench/README.md)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    lines = cpuinfo.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    simd = next((name for name in ("avx512f", "avx2", "avx", "sse4_2") if name in flags), "no AVX")
    return f"{model}, {os.cpu_count()} cores, {simd}"


def best_of(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="trained translate run directory (default: random weights, no latency rows)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens to generate per sequence (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per row; the fastest counts")
    parser.add_argument("--latency-calls", type=int, default=50, help="SavedModel calls for p50/p99")
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=0,
        help="threads per op (0: TensorFlow's default, one per core); 1 mirrors "
        "tensorflow_model_server --tensorflow_intra_op_parallelism=1",
    )
    args = parser.parse_args()
    # Must precede any TensorFlow op. At batch 1 every op is tiny, so splitting one across threads costs
    # more in hand-offs than it saves.
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)

    if args.run:
        run = app.load_run(args.run)
        model, config = run.model, run.config
        source_row = run.tokenizers["source"].tokenize([SENTENCE]).to_tensor().numpy()
    else:
        config = TranslateConfig.load("transformer")
        keras.utils.set_random_seed(0)
        model = app.APP.build_model(config, {"source": 6000, "target": 6000})
        source_row = np.random.default_rng(0).integers(4, 6000, size=(1, 24)).astype("int32")
    trained = "/".join(sorted(layer_dtype_policies(model)))
    print(f"CPU: {cpu_description()}; intra-op threads: {args.intra_op_threads or 'default'}")
    print(
        f"model: {model.count_params():,} params ({'trained run ' + args.run if args.run else 'random weights'}); "
        f"layer dtype policies {trained}; source of {source_row.shape[1]} tokens; "
        f"up to {args.new_tokens} new tokens; greedy; fastest of {args.repeats}"
    )
    max_length = args.new_tokens + 1
    options = dict(
        max_length=max_length, length_ratio=0.0, length_offset=args.new_tokens, start_id=START_ID, end_id=END_ID
    )
    cached_xla = compile_search(greedy_search, model, jit_compile=True, **options)
    cached_graph = compile_search(greedy_search, model, jit_compile=False, static_shapes=False, **options)
    baseline = no_cache_decoder(model)

    print(f"\n{'batch':>5}  {'decoder':<38} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'vs no cache':>11}")
    for batch in (1, 32):
        source = tf.constant(np.repeat(source_row, batch, axis=0))
        rows = {}
        for name, run in (
            ("no cache (re-run prefix, TF tutorial)", lambda source=source: baseline(source, args.new_tokens)),
            ("cached loop, graph (as exported)", lambda source=source: cached_graph(source)["tokens"]),
            ("cached loop, XLA-compiled", lambda source=source: cached_xla(source)["tokens"]),
        ):
            tokens = np.asarray(run())  # warm-up: tracing and compilation are not timed
            generated = int((tokens != PAD_ID).sum())
            rows[name] = (generated, best_of(run, args.repeats))
        base_rate = rows["no cache (re-run prefix, TF tutorial)"][0] / rows["no cache (re-run prefix, TF tutorial)"][1]
        for name, (generated, seconds) in rows.items():
            rate = generated / seconds
            print(f"{batch:>5}  {name:<38} {generated:>7} {seconds:>8.3f} {rate:>9,.0f} {rate / base_rate:>10.1f}x")

    if not args.run:
        print("\nSavedModel latency: skipped (pass --run RUN_DIR to export and time a trained model)")
        return
    text = tf.constant([SENTENCE])
    beam = config.decoding
    greedy = {"search": "greedy", "max_length": config.decoding.get("max_length", 128)}
    rows = [("float32 (default export)", beam, "float32"), ("float32 (default export)", greedy, "float32")]
    if trained != "float32":  # a float32-trained run (the LSTM presets) would repeat the first row
        rows.insert(0, (f"as trained ({trained})", beam, None))
    print(
        f"\nSavedModel latency, {len(SENTENCE.split())}-word sentence, batch 1, {args.latency_calls} calls "
        "(graph mode, as TF Serving runs it):"
    )
    with tempfile.TemporaryDirectory() as base:
        for policy, decoding, serving_dtype in rows:
            version = app.export(args.run, base, decoding=decoding, serving_dtype=serving_dtype)
            serve = tf.saved_model.load(str(version)).signatures["serving_default"]
            output = serve(text=text)["translations"].numpy()[0].decode()
            latencies = []
            for _ in range(args.latency_calls):
                start = time.perf_counter()
                serve(text=text)["translations"].numpy()
                latencies.append(1000 * (time.perf_counter() - start))
            quantiles = statistics.quantiles(latencies, n=100)
            print(
                f"  {decoding['search']:<6} {policy:<28} p50 {quantiles[49]:6.1f} ms  p99 {quantiles[98]:6.1f} ms  "
                f"-> {output!r}"
            )


if __name__ == "__main__":
    main()
