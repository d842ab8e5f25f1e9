"""Where the time of a generated token goes: the whole XLA loop against its matmuls alone, at batch 1 and 16,
the arithmetic each step does, and the plain-graph loop's busiest ops (as a SavedModel runs it).

    python bench/generate_profile.py [--batch-sizes 1,16] [--new-tokens 256] [--out bench/generate/profile.json]

Random weights at the nanoGPT-CPU shape of `bench/generate_speed.py` (4 layers, 4 heads, 128 wide, 69 ids,
prompt 16 + 256 new tokens). For each batch size, all XLA-compiled, fastest of 5 calls:

- loop: `compile_search(generate, ..., search="greedy")`, what bench/generate_speed.py times as "ours, XLA";
- dense floor: the step's matmuls alone (q/k/v/out projections, the feed-forward and the tied output, per layer)
  at the same [B, 128] shapes in one while loop: what XLA's CPU dot costs at these shapes without the attention,
  norms and cache writes.

Then the plain-graph loop (`jit_compile=False`, as the SavedModel runs it) at batch 1 under the TF profiler: its
time per new token and the op types that take it. Writes --out (JSON) and prints each part as it is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from decode_speed import cpu_description  # noqa: E402

from kerasllm.decoding import compile_search, generate  # noqa: E402
from kerasllm.tasks import CausalLM  # noqa: E402

SHAPE = dict(vocabulary_size=69, num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512, max_length=320)
PROMPT_LENGTH = 16


def options(new_tokens: int) -> dict:
    """The searches of bench/generate_speed.py: greedy, exactly `new_tokens` (no end id can stop it)."""
    return dict(max_new_tokens=new_tokens, end_id=-1, search="greedy", max_length=SHAPE["max_length"])


def fastest(function, repeats: int = 5) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def step_flops(batch_size: int, context: int) -> float:
    """Multiply-adds × 2 of one cached step: projections, feed-forward, tied output, attention over `context` keys."""
    d, inner, layers, vocabulary = SHAPE["hidden_dim"], SHAPE["intermediate_dim"], SHAPE["num_layers"], 69
    per_layer = 4 * d * d + 2 * d * inner + 2 * context * d
    return 2.0 * batch_size * (layers * per_layer + d * vocabulary)


def dense_floor(batch_size: int, new_tokens: int):
    d, inner = SHAPE["hidden_dim"], SHAPE["intermediate_dim"]
    rng = np.random.default_rng(0)
    weights = [
        tf.constant(rng.normal(size=shape).astype("float32") * 0.02)
        for shape in [(d, 3 * d), (d, d), (d, inner), (inner, d)]
    ]
    output = tf.constant(rng.normal(size=(d, 69)).astype("float32"))

    @tf.function(jit_compile=True)
    def run(hidden):
        def body(index, hidden):
            for _ in range(SHAPE["num_layers"]):
                qkv = hidden @ weights[0]
                hidden = hidden + qkv[:, :d] @ weights[1]
                hidden = hidden + tf.nn.gelu(hidden @ weights[2]) @ weights[3]
            return index + 1, hidden + tf.reduce_sum(hidden @ output) * 1e-9

        return tf.while_loop(lambda index, _: index < new_tokens, body, (0, hidden))[1]

    hidden = tf.ones([batch_size, d])
    return lambda: run(hidden)


def graph_profile(model: CausalLM, prompts: tf.Tensor, new_tokens: int) -> dict:
    search = compile_search(generate, model, jit_compile=False, static_shapes=False, **options(new_tokens))
    lengths = tf.fill([prompts.shape[0]], PROMPT_LENGTH)
    call = lambda: search(prompts, lengths)  # noqa: E731
    seconds = fastest(call, repeats=3)
    log_dir = tempfile.mkdtemp(prefix="generate-profile-")
    tf.profiler.experimental.start(log_dir)
    call()
    tf.profiler.experimental.stop()
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # noqa: F401  (loads the converter)

    op_time = Counter()
    op_count = Counter()
    for trace in Path(log_dir).rglob("*.xplane.pb"):
        from tensorflow.tsl.profiler.protobuf import xplane_pb2

        space = xplane_pb2.XSpace()
        space.ParseFromString(trace.read_bytes())
        for plane in space.planes:
            if plane.name != "/host:CPU":
                continue
            names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
            for line in plane.lines:
                if "TraceMe" in line.name or "Executor" in line.name:
                    continue
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    node, _, op_type = name.rpartition(":")
                    if node and op_type.isidentifier() and "::" not in name and " " not in name:  # "node:OpType"
                        op_time[op_type] += event.duration_ps / 1e6
                        op_count[op_type] += 1
    total = sum(op_time.values()) or 1.0
    return {
        "seconds": seconds,
        "tokens_per_second": prompts.shape[0] * new_tokens / seconds,
        "ms_per_token_step": 1000 * seconds / new_tokens,
        "top_ops": [
            {
                "op": op,
                "share": round(t / total, 3),
                "calls_per_step": round(op_count[op] / (PROMPT_LENGTH + new_tokens), 1),
            }
            for op, t in op_time.most_common(8)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--out", default="bench/generate/profile.json")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = CausalLM(**SHAPE)
    search = compile_search(generate, model, jit_compile=True, **options(args.new_tokens))
    rows = []
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        prompts = tf.constant(np.random.default_rng(batch_size).integers(4, 69, (batch_size, PROMPT_LENGTH)), tf.int32)
        lengths = tf.fill([batch_size], PROMPT_LENGTH)
        new = args.new_tokens
        loop = fastest(lambda prompts=prompts, lengths=lengths: search(prompts, lengths))
        dense = fastest(dense_floor(batch_size, new))
        flops = sum(step_flops(batch_size, PROMPT_LENGTH + i) for i in range(new))
        rows.append(
            {
                "batch_size": batch_size,
                "loop_ms_per_token_step": 1000 * loop / new,
                "dense_floor_ms_per_token_step": 1000 * dense / new,
                "loop_tokens_per_second": batch_size * new / loop,
                "achieved_gflops": flops / loop / 1e9,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    prompts = tf.constant(np.random.default_rng(1).integers(4, 69, (1, PROMPT_LENGTH)), tf.int32)
    graph = graph_profile(model, prompts, args.new_tokens)
    print(json.dumps(graph, indent=1))
    result = {
        "cpu": cpu_description(),
        "command": "python bench/generate_profile.py " + " ".join(sys.argv[1:]),
        "shape": SHAPE,
        "xla": rows,
        "graph_batch_1": graph,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
