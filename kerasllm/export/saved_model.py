"""Export a trained translator as a TF Serving SavedModel: text in, translations and scores out.

Written by hand as a `tf.Module` rather than with `keras.Model.export`: that exports `call()` only,
while serving needs tokenization, the whole decoding loop and detokenization in one signature
(and keras-hub#1629 / #2015 show tokenizer resources going untracked on that path). The decoding
function is traced with `jit_compile=False`: the stock tensorflow_model_server cannot run XLA
(tensorflow/serving#2214), so the graph holds only core TF and tensorflow-text ops.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerasllm.decoding import SEARCHES


class TranslatorModule(tf.Module):
    """The serving graph: normalize → tokenize → truncate → search → detokenize.

    Args:
        model: a seq2seq model with the decoding interface.
        source_tokenizer, target_tokenizer: `kerasllm.data.tokenizer.SubwordTokenizer`s.
        search: "beam" or "greedy".
        max_source_length: source tokens kept (longer inputs are truncated, never rejected).
        **search_options: keyword arguments of the search (beam_size, alpha, max_length, ...).
    """

    def __init__(self, model: keras.Model, source_tokenizer: Any, target_tokenizer: Any, *, search: str = "beam",
                 max_source_length: int = 128, **search_options: Any):
        super().__init__()
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {sorted(SEARCHES)}; got {search!r}")
        self.model = model
        # Keras 3 variables are not tf.Module children: without this list of their tf.Variables the SavedModel's
        # object graph holds none, so its restore op restores nothing. tf.saved_model.load hides that (it binds the
        # captured values itself), but TF1-style loaders, tensorflow_model_server's among them, then fail with
        # "Could not find variable" (tensorflow/serving#2250).
        self.model_variables = [variable.value for variable in model.variables]
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self._search = SEARCHES[search]
        self._max_source_length = max_source_length
        self._search_options = search_options

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], jit_compile=False)
    def translate(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        source = self.source_tokenizer.tokenize(text)[:, : self._max_source_length]
        encoder_tokens = source.to_tensor(default_value=0)
        # No XLA here, so the buffers and cache can be sized per batch: a 20-word sentence's beam search reads
        # and writes a 55-slot cache each step instead of a max_length one.
        result = self._search(self.model, encoder_tokens, static_shapes=False, **self._search_options)
        tokens, scores = result["tokens"], result["scores"]
        if len(tokens.shape) == 3:  # beam search returns an n-best list: serve the best.
            tokens, scores = tokens[:, 0], scores[:, 0]
        return {"translations": self.target_tokenizer.detokenize(tokens), "scores": scores}


def next_version(base_path: str | Path) -> int:
    """1 + the highest integer version under `base_path` (TF Serving serves the highest)."""
    base_path = Path(base_path)
    versions = [int(p.name) for p in base_path.iterdir() if p.is_dir() and p.name.isdigit()] if base_path.exists() else []
    return max(versions, default=0) + 1


def layer_dtype_policies(model: keras.Model) -> set[str]:
    """The dtype policies its weighted layers compute under. Not `model.dtype_policy`: a mixed-precision model
    reloaded under float32 reports a float32 policy while its layers still compute in bfloat16/float16."""
    return {layer.dtype_policy.name for layer in model.layers if layer.weights}


def with_dtype_policy(model: keras.Model, dtype_policy: str) -> keras.Model:
    """A copy of a functional kerasllm model whose layers compute in `dtype_policy`, with the same weights.

    Mixed-precision training keeps float32 variables, so a float32 copy is the trained model without
    the bfloat16/float16 rounding of its activations.
    """
    config = model.get_config()
    config["dtype"] = dtype_policy
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def export_translator(model: keras.Model, source_tokenizer: Any, target_tokenizer: Any, base_path: str | Path, *,
                      version: int | None = None, serving_dtype: str | None = "float32",
                      **module_options: Any) -> Path:
    """Write `base_path/<version>/`, a SavedModel whose `serving_default` maps text to translations.

    The SavedModel is written to a temporary directory beside the target and renamed into place,
    so a model server watching `base_path` never sees a half-written version.

    Args:
        model: a trained seq2seq model.
        source_tokenizer, target_tokenizer: the tokenizers it was trained with.
        base_path: the TF Serving model base path, e.g. `saved_models/translate`.
        version: integer version; default the next free one.
        serving_dtype: dtype policy of the served model (None keeps the model's). float32 by default: the
            Multi30K Transformer trained in mixed_bfloat16 serves a 20-word sentence faster in float32 on every
            CPU measured (`bench/decode_speed.py --run`; the figures are in bench/README.md): at batch 1 the
            bfloat16 casts cost more than the cheaper arithmetic saves.
        **module_options: `TranslatorModule` options (search, max_source_length, beam_size, ...).

    A model with a tied output embedding is served as `model.untied()`: the same logits, faster.

    Returns:
        the version directory.

    Example:
    >>> # export_translator(model, src_tok, tgt_tok, "saved_models/translate", search="beam", beam_size=4)
    """
    base_path = Path(base_path)
    base_path.mkdir(parents=True, exist_ok=True)
    version = next_version(base_path) if version is None else version
    target = base_path / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists: choose another --version or remove it first")
    if serving_dtype is not None and layer_dtype_policies(model) != {serving_dtype}:
        model = with_dtype_policy(model, serving_dtype)
    if hasattr(model, "untied"):  # the same logits from the weight layout a step reads fastest (tied models)
        model = model.untied()
    module = TranslatorModule(model, source_tokenizer, target_tokenizer, **module_options)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=base_path))
    try:
        tf.saved_model.save(module, str(staging), signatures={"serving_default": module.translate})
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
