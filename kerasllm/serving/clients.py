"""Clients for any model served by tensorflow_model_server, REST and gRPC, with one answer shape.

`predict_rest` and `predict_grpc` send named input batches to a signature and return its named outputs as
lists (strings decoded as UTF-8, numbers as Python numbers), so both answer alike; `translate_rest` and
`translate_grpc` are the translate app's shape of that answer.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

START_A_SERVER = "start one as in saved_models/README.md"


def _decoded(value: Any) -> Any:
    """A response value with its strings decoded: bytes and REST's {"b64": ...} objects to str."""
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        value = base64.b64decode(value["b64"])
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _to_json(value: Any) -> Any:
    """An input value in TF Serving's JSON: arrays as lists, bytes as {"b64": ...} (JSON strings must be UTF-8)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value.item() if isinstance(value, np.generic) else value


def _request_json(url: str, *, host: str, port: int, timeout: float, body: bytes | None = None) -> Any:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            text = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            pass
        raise RuntimeError(f"model server answered {error.code}: {text[:300]}") from None
    except urllib.error.URLError as error:
        raise ConnectionError(f"no model server at {host}:{port} ({error.reason}); {START_A_SERVER}") from None
    except TimeoutError:
        raise ConnectionError(f"the model server at {host}:{port} did not answer within {timeout} s") from None


def predict_rest(
    inputs: Mapping[str, Sequence | np.ndarray],
    *,
    model: str,
    host: str = "localhost",
    port: int = 8501,
    signature_name: str = "serving_default",
    timeout: float = 30.0,
) -> dict[str, list]:
    """POST /v1/models/<model>:predict with the columnar `inputs` format.

    Args:
        inputs: input name → batch (a list, nested for higher ranks, or an array); str is sent as text,
            bytes base64-encoded.
        model: the served model name (see saved_models/models.config).
        host, port: the model server's REST endpoint (default port 8501).
        signature_name: the signature to run.
        timeout: seconds before giving up.

    Returns:
        output name → batch as a list (strings decoded as UTF-8).

    Raises:
        ConnectionError: no server answers. RuntimeError: the server refused the request (unknown model,
            wrong input name or dtype, ...), with its error message.

    Example:
    >>> # predict_rest({"question": ["Who?"], "context": ["Ann did."]}, model="qa")
    """
    url = f"http://{host}:{port}/v1/models/{model}"
    body = json.dumps(
        {"signature_name": signature_name, "inputs": {name: _to_json(batch) for name, batch in inputs.items()}}
    ).encode()
    outputs = _request_json(f"{url}:predict", host=host, port=port, timeout=timeout, body=body)["outputs"]
    if not isinstance(outputs, dict) or set(outputs) == {"b64"}:
        # TF Serving leaves the name out when the signature has one output: the model's metadata has it.
        metadata = _request_json(f"{url}/metadata", host=host, port=port, timeout=timeout)
        (name,) = metadata["metadata"]["signature_def"]["signature_def"][signature_name]["outputs"]
        outputs = {name: outputs}
    return {name: _decoded(value) for name, value in outputs.items()}


def predict_grpc(
    inputs: Mapping[str, Sequence | np.ndarray],
    *,
    model: str,
    host: str = "localhost",
    port: int = 8500,
    signature_name: str = "serving_default",
    timeout: float = 30.0,
) -> dict[str, list]:
    """PredictionService.Predict over gRPC with a tensorflow-serving-api `PredictRequest`.

    Args:
        inputs: input name → batch, each turned into a TensorProto by `tf.make_tensor_proto` (str and bytes
            give DT_STRING, Python floats DT_FLOAT, ints DT_INT32; pass an array for another dtype).
        model: the served model name.
        host, port: the model server's gRPC endpoint (default port 8500).
        signature_name: the signature to run.
        timeout: seconds before giving up.

    Returns:
        output name → batch as a list (strings decoded as UTF-8), as `predict_rest` returns it.

    Raises:
        ConnectionError: no server answers. RuntimeError: the server refused the request, with its message.

    Example:
    >>> # predict_grpc({"text": ["A dog runs."]}, model="translate")
    """
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    for name, batch in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(batch))
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ConnectionError(
                    f"gRPC call to {host}:{port} failed: {error.code().name}: {error.details()}; {START_A_SERVER}"
                ) from None
            raise RuntimeError(f"model server answered {error.code().name}: {error.details()[:300]}") from None
    return {name: _decoded(tf.make_ndarray(tensor).tolist()) for name, tensor in response.outputs.items()}


def _translations(outputs: dict[str, list]) -> list[dict]:
    return [
        {"translation": translation, "score": float(score)}
        for translation, score in zip(outputs["translations"], outputs["scores"])
    ]


def translate_rest(
    texts: Sequence[str], *, host: str = "localhost", port: int = 8501, model: str = "translate", timeout: float = 30.0
) -> list[dict]:
    """Translate through a served translate model's REST API (`predict_rest` with the `text` input).

    Returns:
        one dict per input: `translation` and `score`.

    Example:
    >>> # translate_rest(["A dog runs."], host="localhost")
    """
    return _translations(predict_rest({"text": list(texts)}, model=model, host=host, port=port, timeout=timeout))


def translate_grpc(
    texts: Sequence[str], *, host: str = "localhost", port: int = 8500, model: str = "translate", timeout: float = 30.0
) -> list[dict]:
    """Translate through a served translate model's gRPC API (`predict_grpc` with the `text` input).

    Returns:
        one dict per input: `translation` and `score`.

    Example:
    >>> # translate_grpc(["A dog runs."], host="localhost")
    """
    texts = np.array(list(texts), dtype=object)  # DT_STRING even for an empty batch (an empty list gives DT_FLOAT)
    return _translations(predict_grpc({"text": texts}, model=model, host=host, port=port, timeout=timeout))


def _classifications(outputs: dict[str, list]) -> list[dict]:
    return [
        {
            "label": label,
            "probabilities": dict(zip(classes, (float(p) for p in probabilities))),
            "windows": int(windows),
        }
        for label, probabilities, classes, windows in zip(
            outputs["label"], outputs["probabilities"], outputs["classes"], outputs["windows"]
        )
    ]


def classify_rest(
    texts: Sequence[str], *, host: str = "localhost", port: int = 8501, model: str = "classify", timeout: float = 30.0
) -> list[dict]:
    """Classify through a served classify model's REST API (`predict_rest` with the `text` input).

    Returns:
        one dict per input: `label`, `probabilities` (class name → probability) and `windows` (0: the text had no
        tokens and got the training prior).

    Example:
    >>> # classify_rest(["WINNER! Claim your prize"], host="localhost")  # [{"label": "spam", ...}]
    """
    return _classifications(predict_rest({"text": list(texts)}, model=model, host=host, port=port, timeout=timeout))


def classify_grpc(
    texts: Sequence[str], *, host: str = "localhost", port: int = 8500, model: str = "classify", timeout: float = 30.0
) -> list[dict]:
    """Classify through a served classify model's gRPC API (`predict_grpc` with the `text` input).

    Returns:
        as `classify_rest`.

    Example:
    >>> # classify_grpc(["WINNER! Claim your prize"], host="localhost")
    """
    texts = np.array(list(texts), dtype=object)  # DT_STRING even for an empty batch
    return _classifications(predict_grpc({"text": texts}, model=model, host=host, port=port, timeout=timeout))


def _generation_inputs(
    prompts: Sequence[str], max_new_tokens: int, temperature: float, top_k: int, top_p: float, seed: int
) -> dict[str, np.ndarray]:
    """The generate signature's inputs, one row per prompt, each with its dtype (an empty batch keeps them)."""
    rows = len(prompts)
    return {
        "prompt": np.array(list(prompts), dtype=object),
        "max_new_tokens": np.full(rows, max_new_tokens, np.int32),
        "temperature": np.full(rows, temperature, np.float32),
        "top_k": np.full(rows, top_k, np.int32),
        "top_p": np.full(rows, top_p, np.float32),
        "seed": np.full(rows, seed, np.int32),
    }


def _generations(outputs: dict[str, list]) -> list[dict]:
    return [
        {"text": text, "prompt": prompt, "truncated": bool(truncated), "new_tokens": int(new_tokens)}
        for text, prompt, truncated, new_tokens in zip(
            outputs["text"], outputs["prompt"], outputs["truncated"], outputs["new_tokens"]
        )
    ]


def generate_rest(
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    host: str = "localhost",
    port: int = 8501,
    model: str = "generate",
    timeout: float = 60.0,
) -> list[dict]:
    """Continue prompts through a served generate model's REST API (the same settings for every prompt; the
    signature also takes one per row). temperature 0 is greedy, top_k 0 and top_p 1 filter nothing.

    Returns:
        one dict per prompt: `text` (the continuation), `prompt` (as the model read it), `truncated`, `new_tokens`.

    Example:
    >>> # generate_rest(["ROMEO:"], max_new_tokens=100, temperature=0.8, seed=1)[0]["text"]
    """
    inputs = _generation_inputs(prompts, max_new_tokens, temperature, top_k, top_p, seed)
    return _generations(predict_rest(inputs, model=model, host=host, port=port, timeout=timeout))


def generate_grpc(
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    host: str = "localhost",
    port: int = 8500,
    model: str = "generate",
    timeout: float = 60.0,
) -> list[dict]:
    """As `generate_rest`, over gRPC.

    Example:
    >>> # generate_grpc(["ROMEO:"], max_new_tokens=100, seed=1)
    """
    inputs = _generation_inputs(prompts, max_new_tokens, temperature, top_k, top_p, seed)
    return _generations(predict_grpc(inputs, model=model, host=host, port=port, timeout=timeout))
