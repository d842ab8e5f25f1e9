"""Check a serving SavedModel the way a model server sees it. Run as a script in a fresh process:

    python verify_worker.py SAVED_MODEL_DIR [--max-seconds S]

It imports only tensorflow and tensorflow_text (no keras, no kerasllm), loads the SavedModel, runs
`serving_default` on ordinary and hostile inputs, loads it again the way tensorflow_model_server does
(a TF1 session that runs the SavedModel's restore op) and checks both give the same outputs, lists
every op in the graph and prints one JSON report on stdout. Kept free of kerasllm imports on purpose:
a model that needs our Python code to load would not load in tensorflow_model_server either.
"""

import argparse
import json
import sys
import time

import numpy as np
import tensorflow as tf

CORE_OPS = frozenset(name for name in dir(tf.raw_ops) if not name.startswith("_"))
import tensorflow_text  # noqa: E402,F401  (registers the tensorflow-text kernels; must come after CORE_OPS)
from tensorflow.python.framework import op_def_registry  # noqa: E402

SAMPLES = [
    "A man in a blue shirt is standing on a ladder.",
    "Two dogs play in the snow.",
]
HOSTILE = {
    "empty": b"",
    "whitespace": b"   \t ",
    "10000 characters": ("word " * 2000).encode(),
    "invalid UTF-8": b"caf\xc3 \xff\xfe bad \x80 bytes",
    "emoji": "The cat 🐱 sleeps 😴 🎉".encode(),
    "CJK": "一个男人在骑自行车。男の人が自転車に乗っている。".encode(),
    "right-to-left": "رجل يركب دراجة. איש רוכב על אופניים.".encode(),
}


def graph_ops(path):
    """Every op type in the SavedModel's graph and function library, and the jit-compiled functions."""
    from tensorflow.python.saved_model import loader_impl

    ops, jit_functions = set(), []
    meta_graph = loader_impl.parse_saved_model(path).meta_graphs[0]
    graph_def = meta_graph.graph_def
    for node in graph_def.node:
        ops.add(node.op)
        if node.attr["_XlaMustCompile"].b:
            jit_functions.append(node.name)
    for function in graph_def.library.function:
        if function.attr["_XlaMustCompile"].b:
            jit_functions.append(function.signature.name)
        for node in function.node_def:
            ops.add(node.op)
            if node.attr["_XlaMustCompile"].b:
                jit_functions.append(f"{function.signature.name}/{node.name}")
    functions = {f.signature.name for f in graph_def.library.function}
    return ops - functions, jit_functions


def error_summary(error):
    """One line naming the error: its first line that says something (TF's start with "Graph execution error:")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.endswith("error:")] or lines or [""]
    return f"{type(error).__name__}: {useful[0]}"


def session_outputs(path, batch):
    """`serving_default`'s outputs through tensorflow_model_server's loading path: import the graph into a TF1
    session, run the SavedModel's restore op, then the signature. tf.saved_model.load binds captured variable
    values itself and never runs that restore op, so an export whose variables are missing from its object graph
    loads there and fails in the server ("Could not find variable", tensorflow/serving#2250)."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta_graph.signature_def["serving_default"]
        fetches = {key: tensor.name for key, tensor in signature.outputs.items()}
        return session.run(fetches, {signature.inputs["text"].name: batch})


def same_outputs(expected, actual):
    """Whether two {name: array} outputs agree: strings exactly, numbers to float32 rounding."""
    if set(expected) != set(actual):
        return False
    for key, value in expected.items():
        if value.dtype.kind in "SOU":
            if value.tolist() != actual[key].tolist():
                return False
        elif value.shape != actual[key].shape or not np.allclose(value, actual[key], atol=1e-4):
            return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--max-seconds", type=float, default=30.0)
    args = parser.parse_args()
    problems = []
    loaded = tf.saved_model.load(args.path)
    serve = loaded.signatures["serving_default"]

    calls = {"samples": [s.encode() for s in SAMPLES], **{name: [text] for name, text in HOSTILE.items()},
             "mixed batch": [s.encode() for s in SAMPLES] + list(HOSTILE.values())}
    results, slowest, mixed_batch_outputs = {}, 0.0, None
    for name, batch in calls.items():
        start = time.perf_counter()
        try:
            outputs = serve(text=tf.constant(batch, tf.string))
        except Exception as error:  # a server would return this error to the client: record it.
            problems.append(f"{name}: signature raised {error_summary(error)}")
            continue
        seconds = time.perf_counter() - start
        slowest = max(slowest, seconds)
        rows = {key: value.numpy() for key, value in outputs.items()}
        if name == "mixed batch":
            mixed_batch_outputs = rows
        for key, value in rows.items():
            if value.shape[:1] != (len(batch),):
                problems.append(f"{name}: output {key} has shape {value.shape}, expected {len(batch)} rows")
            if value.dtype.kind == "f" and not bool(tf.reduce_all(tf.math.is_finite(value))):
                problems.append(f"{name}: output {key} is not finite: {value}")
        texts = [t.decode("utf-8", errors="replace") for t in rows.get("translations", [])]
        results[name] = {"seconds": round(seconds, 4), "translations": texts,
                         "scores": [float(s) for s in rows.get("scores", [])]}
    if mixed_batch_outputs is not None:
        try:
            in_session = session_outputs(args.path, calls["mixed batch"])
        except Exception as error:
            problems.append(f"loading in a TF1 session, as tensorflow_model_server does, failed: "
                            f"{error_summary(error)}")
        else:
            if not same_outputs(mixed_batch_outputs, in_session):
                problems.append("loaded in a TF1 session, as tensorflow_model_server does, the SavedModel gives "
                                "other outputs than through tf.saved_model.load")
    if slowest > args.max_seconds:
        problems.append(f"slowest call took {slowest:.2f} s, over the {args.max_seconds} s bound")

    ops, jit_functions = graph_ops(args.path)
    xla_ops = sorted(op for op in ops if op.startswith(("Xla", "_Xla")))
    foreign = sorted(op for op in ops if op not in CORE_OPS and op_def_registry.get(op) is None)
    text_ops = sorted(op for op in ops if op not in CORE_OPS and op_def_registry.get(op) is not None)
    if xla_ops:
        problems.append(f"XLA ops in the graph: {xla_ops}")
    if jit_functions:
        problems.append(f"jit-compiled functions in the graph: {jit_functions}")
    if foreign:
        problems.append(f"ops outside core TF and tensorflow-text: {foreign}")
    if "kerasllm" in sys.modules or "keras_hub" in sys.modules:
        problems.append("loading the SavedModel imported kerasllm/keras_hub Python code")

    print(json.dumps({"path": args.path, "ok": not problems, "problems": problems, "slowest_seconds": round(slowest, 4),
                      "ops": sorted(ops), "tensorflow_text_ops": text_ops, "calls": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
