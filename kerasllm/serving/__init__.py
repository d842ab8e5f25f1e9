"""Clients for kerasllm models served by tensorflow_model_server."""

from kerasllm.serving.clients import (
    classify_grpc,
    classify_rest,
    generate_grpc,
    generate_rest,
    predict_grpc,
    predict_rest,
    translate_grpc,
    translate_rest,
)

__all__ = [
    "classify_grpc",
    "classify_rest",
    "generate_grpc",
    "generate_rest",
    "predict_grpc",
    "predict_rest",
    "translate_grpc",
    "translate_rest",
]
