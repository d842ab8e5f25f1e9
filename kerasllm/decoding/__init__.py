"""Decoding: greedy, sampling and beam search, each one compiled loop over a model's cached step.

`loops` holds the searches over a step function; `seq2seq` adapts them to encoder-decoder models (translation),
`causal` to causal language models (generation); `compile_search` compiles either once per input-length bucket.
"""

from kerasllm.decoding.causal import generate
from kerasllm.decoding.compiled import compile_search
from kerasllm.decoding.loops import (
    LOOPS,
    beam_loop,
    greedy_loop,
    length_penalty,
    next_token_log_probs,
    sampler,
    sampling_loop,
)
from kerasllm.decoding.seq2seq import SEARCHES, beam_search, greedy_search, new_token_budget, sample

__all__ = [
    "LOOPS",
    "SEARCHES",
    "beam_loop",
    "beam_search",
    "compile_search",
    "generate",
    "greedy_loop",
    "greedy_search",
    "length_penalty",
    "next_token_log_probs",
    "new_token_budget",
    "sample",
    "sampler",
    "sampling_loop",
]
