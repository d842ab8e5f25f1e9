"""The models run on the JAX backend too (keras.ops only): a forward pass, cached decoding and a few `fit` steps.

Keras fixes its backend at import, so the check runs in a subprocess with KERAS_BACKEND=jax.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    from kerasllm.models import LSTMSeq2Seq, Transformer

    assert keras.backend.backend() == "jax", keras.backend.backend()
    rng = np.random.default_rng(0)
    source = rng.integers(4, 20, size=(4, 6)).astype("int32")
    target = rng.integers(4, 20, size=(4, 5)).astype("int32")
    source[1, 3:] = 0
    target[:, 0] = 2
    models = {
        "transformer": Transformer(
            20, 20, 1, 1, hidden_dim=16, num_heads=2, intermediate_dim=32, max_length=8, normalize_first=True
        ),
        "lstm": LSTMSeq2Seq(20, 20, embedding_dim=8, units=16, attention="bahdanau", bidirectional_encoder=True),
    }
    for name, model in models.items():
        logits = np.asarray(model((source, target), training=False))
        assert logits.shape == (4, 5, 20) and logits.dtype == np.float32, (name, logits.shape, logits.dtype)
        state = model.encode(source)
        cache = model.init_cache(state, max_length=5)
        for index in range(5):
            step, cache = model.decode_step(target[:, index], np.int32(index), cache, state)
            np.testing.assert_allclose(np.asarray(step), logits[:, index], atol=1e-5)
        model.compile(
            optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
        )
        history = model.fit((source, target), target, batch_size=2, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all(), name
        print(name, "ok", history.history["loss"])
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install '.[dev]')")
def test_models_forward_decode_and_fit_on_jax():
    repo_root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(repo_root)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=repo_root, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "transformer ok" in result.stdout and "lstm ok" in result.stdout
