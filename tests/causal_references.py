"""Reference answers for causal-LM decoding tests: ragged prompts, and greedy search and log-probabilities computed by
re-running the full model over the whole prefix (no cache), to compare cached decoding against."""

from __future__ import annotations

import numpy as np

PAD_ID, END_ID = 0, 3
PROMPTS = [[5, 9, 4, 17, 8, 11], [7, 6], [12, 20, 21, 5]]


def right_padded(rows=PROMPTS):
    """Right-padded [B, P] prompts and their lengths."""
    tokens = np.zeros((len(rows), max(map(len, rows))), "int32")
    for row, prompt in zip(tokens, rows):
        row[: len(prompt)] = prompt
    return tokens, np.array([len(prompt) for prompt in rows], "int32")


def log_softmax(logits):
    logits = np.asarray(logits, "float64")
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def greedy_without_cache(model, prompt, max_new_tokens):
    """Re-run the full causal pass over the whole prefix at every step."""
    sequence, generated = list(prompt), []
    for _ in range(max_new_tokens):
        logits = np.array(model(np.array([sequence], "int32")))[0, -1]
        logits[PAD_ID] = -np.inf  # a search never emits padding
        generated.append(int(logits.argmax()))
        sequence.append(generated[-1])
        if generated[-1] == END_ID:
            break
    return generated


def log_prob(model, prompt, generated):
    """log p(generated | prompt) from one full causal pass."""
    log_probs = log_softmax(model(np.array([list(prompt) + list(generated)], "int32")))[0]
    return sum(log_probs[len(prompt) - 1 + i, token] for i, token in enumerate(generated))
