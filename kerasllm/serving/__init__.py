"""Clients for kerasllm models served by tensorflow_model_server."""

from kerasllm.serving.clients import predict_grpc, predict_rest, translate_grpc, translate_rest

__all__ = ["predict_grpc", "predict_rest", "translate_grpc", "translate_rest"]
