"""Clients for kerasllm models served by tensorflow_model_server."""

from kerasllm.serving.clients import translate_grpc, translate_rest

__all__ = ["translate_grpc", "translate_rest"]
