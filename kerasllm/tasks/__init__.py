"""kerasllm tasks: complete models for one job each, built from the layers and backbones."""

from kerasllm.tasks.causal_lm import CausalLM

__all__ = ["CausalLM"]
