"""Check a serving SavedModel the way a model server sees it. Run as a script in a fresh process:

    python verify_worker.py SAVED_MODEL_DIR [--max-seconds S]

It imports only tensorflow and tensorflow_text (no keras, no kerasllm), reads `serving_default`'s inputs
and outputs from the SavedModel, runs it on ordinary and hostile strings in each input in turn and on a
mixed batch, checks that an empty input is answered alike alone and in that batch, loads the SavedModel
again the way tensorflow_model_server does (a TF1 session that runs its restore op) and checks both give
the same outputs, lists every op in the graph and prints one JSON report on stdout. Progress goes to
stderr as `verify: <stage>` lines, so a crash can be placed. Kept free of kerasllm imports on purpose:
a model that needs our Python code to load would not load in tensorflow_model_server either.
"""

import argparse
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import tensorflow as tf

CORE_OPS = frozenset(name for name in dir(tf.raw_ops) if not name.startswith("_"))
import tensorflow_text  # noqa: E402,F401  (registers the tensorflow-text kernels; must come after CORE_OPS)
from tensorflow.python.framework import op_def_registry  # noqa: E402
from tensorflow.python.saved_model import loader_impl  # noqa: E402

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
# A number input (a generation budget, a temperature, a seed) gets 1 in every ordinary call, then each of these in
# turn: a serving graph must define a result for all of them (clamp, or a documented meaning), not fail.
NUMBER_SAMPLE = 1
HOSTILE_NUMBERS = {
    "zero": 0,
    "negative": -1,
    "huge": 2**31 - 1,
    "NaN": float("nan"),
}
NUMBER_DTYPES = ("int32", "int64", "float32", "float64")
SIGNATURE = "serving_default"


def stage(description):
    print(f"verify: {description}", file=sys.stderr, flush=True)


def error_summary(error):
    """One line naming the error: its first line that says something (TF's start with "Graph execution error:")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.endswith("error:")] or lines or [""]
    return f"{type(error).__name__}: {useful[0][:300]}"


def serving_meta_graph(path):
    """The MetaGraph tensorflow_model_server loads: the one tagged "serve"."""
    for meta_graph in loader_impl.parse_saved_model(path).meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError('no MetaGraph tagged "serve", the tag tensorflow_model_server loads')


def tensor_spec(info):
    """A SignatureDef tensor as JSON: dtype name and shape (-1 for an unknown dimension; None for unknown rank)."""
    shape = None if info.tensor_shape.unknown_rank else [dim.size for dim in info.tensor_shape.dim]
    return {"dtype": tf.dtypes.as_dtype(info.dtype).name, "shape": shape}


def graph_ops(meta_graph):
    """Every op type in the MetaGraph's graph and function library, and the jit-compiled functions."""
    ops, jit_functions = set(), []
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


def audit_ops(meta_graph, report):
    ops, jit_functions = graph_ops(meta_graph)
    registered = {op: op_def_registry.get(op) is not None for op in ops if op not in CORE_OPS}
    report["ops"] = sorted(ops)
    report["tensorflow_text_ops"] = sorted(op for op, known in registered.items() if known)
    xla_ops = sorted(op for op in ops if op.startswith(("Xla", "_Xla")))
    foreign = sorted(op for op, known in registered.items() if not known)
    if xla_ops:
        report["problems"].append(f"XLA ops in the graph: {xla_ops}")
    if jit_functions:
        report["problems"].append(f"jit-compiled functions in the graph: {jit_functions}")
    if foreign:
        report["problems"].append(f"ops outside core TF and tensorflow-text: {foreign}")


def missing_files(path):
    """What a damaged export lacks that tf.saved_model.load needs, as a phrase ("" when nothing is missing)."""
    variables = Path(path) / "variables"
    missing = [f"variables/{name}" for name in ("variables.index",) if not (variables / name).exists()]
    if not list(variables.glob("variables.data-*")):
        missing.append("variables/variables.data-*")
    return f"{', '.join(missing)} missing" if missing else ""


def call_plan(inputs):
    """{call name: {input: batch}}, and the row of the mixed batch that repeats each "empty" call.

    `inputs` maps each input's name to its dtype name. Every input gets the samples (a number input: 1); then each
    hostile string goes into each string input in turn, and each hostile number (NaN only into a float input) into
    each number input, the others getting a sample; the mixed batch holds the samples and every one of those rows."""
    samples = {
        name: [text.encode() for text in SAMPLES] if dtype == "string" else [NUMBER_SAMPLE] * len(SAMPLES)
        for name, dtype in inputs.items()
    }
    plan = {"samples": samples}
    mixed = {name: list(rows) for name, rows in samples.items()}
    empty_rows = {}
    for name, dtype in inputs.items():
        if dtype == "string":
            hostile = HOSTILE
        else:
            hostile = {k: v for k, v in HOSTILE_NUMBERS.items() if dtype.startswith("float") or k != "NaN"}
        for label, value in hostile.items():
            call = label if len(inputs) == 1 else f"{name}: {label}"
            plan[call] = {other: [value if other == name else samples[other][0]] for other in inputs}
            if label == "empty":
                empty_rows[call] = len(mixed[name])
            for other in inputs:
                mixed[other].append(value if other == name else samples[other][0])
    plan["mixed batch"] = mixed
    typed = {
        call: {
            name: np.array(rows, dtype=object if inputs[name] == "string" else inputs[name])
            for name, rows in batch.items()
        }
        for call, batch in plan.items()
    }
    return typed, empty_rows


def bounded(function, seconds):
    """`function()` in a thread: its result, or TimeoutError once it has run `seconds` (the thread is left)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except Exception as error:  # re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"did not return within the {seconds} s bound")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def as_json(value):
    """An output array as JSON: strings decoded (invalid UTF-8 replaced), numbers as Python numbers."""
    if value.dtype.kind in "SO":
        decoded = np.array([text.decode("utf-8", errors="replace") for text in value.ravel()], dtype=object)
        return decoded.reshape(value.shape).tolist()
    return value.tolist()


def row_differences(expected, actual):
    """Names of the outputs on which two {name: array} results differ: strings exactly, numbers beyond 1e-4."""
    differing = sorted(set(expected) ^ set(actual))
    for key in sorted(set(expected) & set(actual)):
        a, b = np.asarray(expected[key]), np.asarray(actual[key])
        if a.dtype.kind in "SOU" or b.dtype.kind in "SOU":
            same = a.shape == b.shape and a.tolist() == b.tolist()
        else:
            same = a.shape == b.shape and np.allclose(a, b, atol=1e-4, equal_nan=True)
        if not same:
            differing.append(key)
    return differing


def brief(value, width=60):
    """A short repr of an output row (strings decoded)."""
    value = value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value
    text = repr(value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value)
    return text if len(text) <= width else text[: width - 3] + "..."


def session_outputs(path, batch):
    """`serving_default`'s outputs through tensorflow_model_server's loading path: import the graph into a TF1
    session, run the SavedModel's restore op, then the signature with every input fed. tf.saved_model.load
    binds captured variable values itself and never runs that restore op, so an export whose variables are
    missing from its object graph loads there and fails in the server ("Could not find variable",
    tensorflow/serving#2250)."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta_graph.signature_def[SIGNATURE]
        fetches = {key: tensor.name for key, tensor in signature.outputs.items()}
        return session.run(fetches, {signature.inputs[key].name: rows for key, rows in batch.items()})


def run_calls(serve, plan, max_seconds, report):
    """Run every planned call; record its outputs and problems. Returns {call: {output: array}} of those that ran."""
    results = {}
    for name, batch in plan.items():
        stage(f"calling {SIGNATURE} on {name!r}")
        rows = len(next(iter(batch.values())))
        tensors = {key: tf.constant(rows) for key, rows in batch.items()}
        start = time.perf_counter()
        try:
            outputs = bounded(
                lambda tensors=tensors: {key: value.numpy() for key, value in serve(**tensors).items()}, max_seconds
            )
        except TimeoutError as error:
            report["problems"].append(f"{name}: the signature {error}")
            raise
        except Exception as error:  # a server would return this error to the client: record it.
            report["problems"].append(f"{name}: signature raised {error_summary(error)}")
            continue
        seconds = time.perf_counter() - start
        report["slowest_seconds"] = round(max(report["slowest_seconds"], seconds), 4)
        results[name] = outputs
        for key, value in outputs.items():
            if value.shape[:1] != (rows,):
                report["problems"].append(f"{name}: output {key} has shape {list(value.shape)}, expected {rows} rows")
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                report["problems"].append(f"{name}: output {key} is not finite: {brief(value)}")
        report["calls"][name] = {
            "seconds": round(seconds, 4),
            "outputs": {key: as_json(value) for key, value in outputs.items()},
        }
    return results


def check_empty_rows(results, plan, empty_rows, report):
    """An empty input must be answered as it is in a batch: its row must not depend on the other rows."""
    mixed = results.get("mixed batch")
    mixed_rows = len(next(iter(plan["mixed batch"].values())))
    for call, row in empty_rows.items():
        if call not in results or mixed is None:
            continue
        # Outputs without one row per input row are reported already; compare the others.
        keys = [
            key
            for key, value in results[call].items()
            if value.shape[:1] == (1,) and key in mixed and mixed[key].shape[:1] == (mixed_rows,)
        ]
        alone = {key: results[call][key][0] for key in keys}
        in_batch = {key: mixed[key][row] for key in keys}
        for key in row_differences(alone, in_batch):
            report["problems"].append(
                f"{call}: output {key} is {brief(alone[key])} alone but {brief(in_batch[key])} in the mixed "
                "batch: the answer to an empty input must not depend on the batch"
            )


def verify(path, max_seconds):
    report = {
        "path": path,
        "ok": False,
        "problems": [],
        "inputs": {},
        "outputs": {},
        "ops": [],
        "tensorflow_text_ops": [],
        "slowest_seconds": 0.0,
        "calls": {},
    }
    problems = report["problems"]
    stage("reading saved_model.pb")
    try:
        meta_graph = serving_meta_graph(path)
    except Exception as error:  # truncated or foreign file
        problems.append(f"saved_model.pb cannot be read ({error_summary(error)}): the export is damaged; export again")
        return report
    audit_ops(meta_graph, report)
    if SIGNATURE not in meta_graph.signature_def:
        named = sorted(name for name in meta_graph.signature_def if not name.startswith("__"))  # not TF's init op
        problems.append(
            f"no {SIGNATURE} signature (it has: {', '.join(named) or 'none'}): "
            f"TF Serving answers a request without signature_name with {SIGNATURE}"
        )
        return report
    signature = meta_graph.signature_def[SIGNATURE]
    report["inputs"] = {key: tensor_spec(info) for key, info in sorted(signature.inputs.items())}
    report["outputs"] = {key: tensor_spec(info) for key, info in sorted(signature.outputs.items())}
    unfed = [
        f"{key} ({spec['dtype']} {spec['shape']})"
        for key, spec in report["inputs"].items()
        if spec["dtype"] not in ("string", *NUMBER_DTYPES) or (spec["shape"] is not None and len(spec["shape"]) != 1)
    ]
    if unfed or not report["inputs"]:
        problems.append(
            f"verify feeds batches of strings or numbers (inputs of shape [None]) only; "
            f"this signature takes {', '.join(unfed) or 'no inputs'}"
        )
        return report

    stage("loading with tf.saved_model.load")
    try:
        loaded = tf.saved_model.load(path)  # kept referenced: the signature reads its variables
        serve = loaded.signatures[SIGNATURE]
    except Exception as error:
        missing = missing_files(path)
        problems.append(f"tf.saved_model.load failed{f' ({missing})' if missing else ''}: {error_summary(error)}")
        return report
    plan, empty_rows = call_plan({key: spec["dtype"] for key, spec in report["inputs"].items()})
    try:
        results = run_calls(serve, plan, max_seconds, report)
        check_empty_rows(results, plan, empty_rows, report)
        if "mixed batch" in results:
            stage("loading in a TF1 session, as tensorflow_model_server does")
            try:
                in_session = bounded(lambda: session_outputs(path, plan["mixed batch"]), max_seconds)
            except TimeoutError as error:
                problems.append(f"loading in a TF1 session, as tensorflow_model_server does: the signature {error}")
                raise
            except Exception as error:
                problems.append(
                    f"loading in a TF1 session, as tensorflow_model_server does, failed: {error_summary(error)}"
                )
            else:
                differing = row_differences(results["mixed batch"], in_session)
                if differing:
                    problems.append(
                        f"loaded in a TF1 session, as tensorflow_model_server does, the SavedModel gives "
                        f"other {', '.join(differing)} than through tf.saved_model.load"
                    )
    except TimeoutError:
        pass  # recorded; what still runs would compete with the stuck call
    if "kerasllm" in sys.modules or "keras_hub" in sys.modules:
        problems.append("loading the SavedModel imported kerasllm/keras_hub Python code")
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--max-seconds", type=float, default=30.0)
    args = parser.parse_args()
    try:
        report = verify(args.path, args.max_seconds)
    except Exception as error:  # a bug of the verifier itself: still one report, the traceback on stderr
        traceback.print_exc()
        report = {"path": args.path, "problems": [f"verify itself failed: {error_summary(error)}"]}
    report["ok"] = not report["problems"]
    print(json.dumps(report, ensure_ascii=False), flush=True)
    sys.stderr.flush()
    os._exit(0)  # a call stuck past its bound would otherwise keep the process alive


if __name__ == "__main__":
    main()
