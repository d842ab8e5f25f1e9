"""Clients for a translator served by tensorflow_model_server: REST and gRPC, same answer shape."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Sequence


def _rows(translations: Sequence, scores: Sequence) -> list[dict]:
    return [{"translation": t.decode("utf-8", errors="replace") if isinstance(t, bytes) else t, "score": float(s)}
            for t, s in zip(translations, scores)]


def translate_rest(texts: Sequence[str], *, host: str = "localhost", port: int = 8501, model: str = "translate",
                   timeout: float = 30.0) -> list[dict]:
    """POST /v1/models/<model>:predict with the columnar `inputs` format.

    Args:
        texts: sentences to translate.
        host, port: the model server's REST endpoint (default port 8501).
        model: the served model name (see saved_models/models.config).
        timeout: seconds before giving up.

    Returns:
        one dict per input: `translation` and `score`.

    Example:
    >>> # translate_rest(["A dog runs."], host="localhost")
    """
    body = json.dumps({"signature_name": "serving_default", "inputs": {"text": list(texts)}}).encode()
    request = urllib.request.Request(f"http://{host}:{port}/v1/models/{model}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            outputs = json.load(response)["outputs"]
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"model server answered {error.code}: {error.read().decode(errors='replace')[:300]}") from None
    except urllib.error.URLError as error:
        raise ConnectionError(f"no model server at {host}:{port} ({error.reason}); start one as in saved_models/README.md") from None
    return _rows(outputs["translations"], outputs["scores"])


def translate_grpc(texts: Sequence[str], *, host: str = "localhost", port: int = 8500, model: str = "translate",
                   timeout: float = 30.0) -> list[dict]:
    """PredictionService.Predict over gRPC with a tensorflow-serving-api `PredictRequest`.

    Args:
        texts: sentences to translate.
        host, port: the model server's gRPC endpoint (default port 8500).
        model: the served model name.
        timeout: seconds before giving up.

    Returns:
        one dict per input: `translation` and `score`.

    Example:
    >>> # translate_grpc(["A dog runs."], host="localhost")
    """
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([t.encode("utf-8") for t in texts], dtype=tf.string))
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ConnectionError(f"gRPC call to {host}:{port} failed: {error.code().name}: {error.details()}") from None
    return _rows(tf.make_ndarray(response.outputs["translations"]), tf.make_ndarray(response.outputs["scores"]))
