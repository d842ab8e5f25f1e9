"""Decoding: greedy, sampling and beam search in one compiled loop carrying the model's cache."""

from kerasllm.decoding.compiled import compile_search
from kerasllm.decoding.search import SEARCHES, beam_search, greedy_search, length_penalty, max_new_tokens, sample

__all__ = ["SEARCHES", "beam_search", "compile_search", "greedy_search", "length_penalty", "max_new_tokens", "sample"]
