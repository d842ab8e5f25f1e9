"""CTranslate2 export of a seq2seq `Transformer`: the fastest CPU path for a trained translator.

The model directory is written with CTranslate2's own Python spec API (`ctranslate2.specs.TransformerSpec`), weight
by weight, so nothing is left to a converter's guess: the fused self-attention and cross-attention key/value
projections, our position table (the interleaved sinusoid of `SinusoidalPositionEncoding` or the learned one, which
replace CTranslate2's own concatenated sinusoid), the sqrt(hidden_dim) embedding scale, pre- or post-norm and the
layer-norm epsilon, the activation, the tied or separate output projection, and vocabularies whose [START], [END] and
[UNK] are CTranslate2's decoder start, end and unknown tokens. At float32 CTranslate2's greedy output is ours token
for token (tests/test_ctranslate2.py).

CTranslate2 is an optional extra (`pip install 'kerasllm[ctranslate2]'`), imported only when exporting.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerasllm.data.tokenizer import END, START, UNK, SubwordTokenizer
from kerasllm.layers import SinusoidalPositionEncoding
from kerasllm.models import LSTMSeq2Seq, Transformer

# What `spec.optimize(quantization=...)` accepts: weights stored as int8 (with float32/float16/bfloat16 for the
# rest), int16, float16, bfloat16 or float32.
QUANTIZATIONS = (
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
# A sinusoidal model has no position bound of its own, CTranslate2's table does: this many rows, CTranslate2's
# default `max_input_length` (its translator truncates longer sources there).
SINUSOIDAL_POSITIONS = 1024
# The files a directory holds besides CTranslate2's: our tokenizers' vocabularies and the caller's settings.
SOURCE_VOCABULARY_FILE, TARGET_VOCABULARY_FILE, SETTINGS_FILE = "source.vocab", "target.vocab", "kerasllm.json"
_INSTALL = "pip install 'kerasllm[ctranslate2]'"


def import_ctranslate2() -> Any:
    """The `ctranslate2` module, or one ValueError saying how to install it."""
    try:
        import ctranslate2
    except ImportError:
        raise ValueError(f"CTranslate2 is not installed: {_INSTALL}") from None
    return ctranslate2


def export_ctranslate2(
    model: keras.Model,
    source_tokenizer: SubwordTokenizer,
    target_tokenizer: SubwordTokenizer,
    out_dir: str | os.PathLike,
    *,
    quantization: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Path:
    """Write a CTranslate2 model directory that translates as `model` does.

    The directory holds CTranslate2's `model.bin`, `config.json` and vocabularies, plus `source.vocab` and
    `target.vocab` (the tokenizers' vocabulary files, to tokenize for it) and, when `settings` are given,
    `kerasllm.json`. It is written to a staging folder beside `out_dir` and renamed into place, so a failed export
    leaves nothing behind.

    Args:
        model: a `kerasllm.models.Transformer` (an `LSTMSeq2Seq` cannot be converted: CTranslate2 has no
            recurrent models).
        source_tokenizer, target_tokenizer: the model's tokenizers; their vocabularies become CTranslate2's.
        out_dir: the directory to write; it must not exist yet, or be empty.
        quantization: one of `QUANTIZATIONS`, or None to store the weights as float32.
        settings: JSON-able values to store as `kerasllm.json` (e.g. an app's decoding options).

    Returns:
        `out_dir`.

    Raises:
        ValueError: CTranslate2 is missing, the model or one of its options has no CTranslate2 equivalent, the
            vocabularies do not fit the model, or the quantization is unknown.
        FileExistsError: `out_dir` exists and is not empty.

    Example:
    >>> # export_ctranslate2(run.model, run.tokenizers["source"], run.tokenizers["target"], "translate_ct2")
    >>> # ctranslate2.Translator("translate_ct2").translate_batch([["A", "man", "."]], beam_size=1)
    """
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}; got {quantization!r}")
    if quantization in ("bfloat16", "int8_bfloat16") and find_spec("torch") is None:
        # CTranslate2's converter casts to bfloat16 through PyTorch.
        raise ValueError(f"quantization {quantization} needs PyTorch (pip install torch); or use float16/int8_float16")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not empty: choose another directory or delete it first")
    spec = transformer_spec(model, source_tokenizer, target_tokenizer)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        spec.validate()
        spec.optimize(quantization=quantization)
        spec.save(str(staging))
        source_tokenizer.save(staging / SOURCE_VOCABULARY_FILE)
        target_tokenizer.save(staging / TARGET_VOCABULARY_FILE)
        if settings is not None:
            (staging / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def transformer_spec(model: keras.Model, source_tokenizer: SubwordTokenizer, target_tokenizer: SubwordTokenizer) -> Any:
    """The filled, not yet validated `ctranslate2.specs.TransformerSpec` of `model` (see `export_ctranslate2`)."""
    if isinstance(model, LSTMSeq2Seq):
        raise ValueError(
            "an LSTMSeq2Seq cannot be exported to CTranslate2, which has no recurrent models: export a Transformer "
            "run, or this one as a SavedModel (--format saved_model)"
        )
    if not isinstance(model, Transformer):
        raise ValueError(f"CTranslate2 export takes a kerasllm.models.Transformer, got {type(model).__name__}")
    ctranslate2 = import_ctranslate2()
    specs = ctranslate2.specs
    for side, tokenizer, size in (
        ("source", source_tokenizer, model.source_vocabulary_size),
        ("target", target_tokenizer, model.target_vocabulary_size),
    ):
        if tokenizer.vocabulary_size != size:
            raise ValueError(
                f"the {side} vocabulary has {tokenizer.vocabulary_size} tokens, the model {size}: "
                "pass the tokenizers the model was trained with"
            )
    activation = _activation(model.activation, specs.common_spec.Activation)
    stacks = dict(num_heads=model.num_heads, pre_norm=model.normalize_first, activation=activation)
    spec = specs.TransformerSpec(
        specs.TransformerEncoderSpec(model.num_encoder_layers, **stacks),
        specs.TransformerDecoderSpec(model.num_decoder_layers, **stacks),
    )
    spec.config.unk_token, spec.config.bos_token, spec.config.eos_token = UNK, START, END
    spec.config.decoder_start_token = START
    # Our sources have no [START]/[END] (kerasllm.data.pipeline.make_seq2seq_dataset).
    spec.config.add_source_bos = spec.config.add_source_eos = False
    spec.config.layer_norm_epsilon = float(model.layer_norm_epsilon)
    spec.register_source_vocabulary(source_tokenizer.vocabulary)
    spec.register_target_vocabulary(target_tokenizer.vocabulary)

    epsilon = model.layer_norm_epsilon
    _set_stack(spec.encoder, model.encoder, epsilon)
    _set_stack(spec.decoder, model.decoder, epsilon)
    for layer_spec, layer in zip(spec.encoder.layer, model.encoder.transformer_layers, strict=True):
        _set_attention(layer_spec.self_attention, layer.self_attention, layer.self_attention_layer_norm, epsilon)
        _set_feedforward(layer_spec.ffn, layer, epsilon)
    for layer_spec, layer in zip(spec.decoder.layer, model.decoder.transformer_layers, strict=True):
        _set_attention(layer_spec.self_attention, layer.self_attention, layer.self_attention_layer_norm, epsilon)
        _set_attention(layer_spec.attention, layer.cross_attention, layer.cross_attention_layer_norm, epsilon)
        _set_feedforward(layer_spec.ffn, layer, epsilon)
    if model.output_projection is None:  # tied: the logits are h E^T, E the target embedding [V, D]
        spec.decoder.projection.weight = _value(model.decoder.token_embedding.embeddings)
    else:
        _set_linear(spec.decoder.projection, model.output_projection)
    return spec


def _activation(activation: str, activations: Any) -> Any:
    # Keras's "gelu" is the exact, erf form (approximate=False): CTranslate2's GELU, not its GELUTanh.
    supported = {"relu": activations.RELU, "gelu": activations.GELU, "silu": activations.SWISH}
    name = keras.activations.serialize(keras.activations.get(activation))  # "swish" is "silu"
    if name not in supported:
        raise ValueError(f"activation {name!r} has no CTranslate2 equivalent here (supported: {', '.join(supported)})")
    return supported[name]


def _value(tensor: Any) -> np.ndarray:
    """A weight or tensor as float32 numpy: a mixed-precision model keeps float32 variables, read as stored."""
    # A variable's own numpy(): converting the variable itself goes through a deprecated __array__ path.
    value = tensor.numpy() if isinstance(tensor, keras.Variable) else keras.ops.convert_to_numpy(tensor)
    return np.asarray(value, dtype=np.float32)


def _set_linear(spec: Any, dense: keras.layers.Dense) -> None:
    _set_fused_linear(spec, [dense])


def _set_fused_linear(spec: Any, denses: list[keras.layers.Dense]) -> None:
    """CTranslate2 stores a linear layer as weight [out, in] (our kernel transposed) and bias [out]; several of our
    layers side by side become one, outputs concatenated in order."""
    spec.weight = np.concatenate([_value(dense.kernel) for dense in denses], axis=1).T.copy()
    if denses[0].use_bias:
        spec.bias = np.concatenate([_value(dense.bias) for dense in denses])


def _set_layer_norm(spec: Any, layer: keras.layers.LayerNormalization, epsilon: float) -> None:
    if layer.rms_scaling or not (layer.center and layer.scale) or layer.epsilon != epsilon:
        raise ValueError(
            f"layer norm {layer.name} (epsilon {layer.epsilon}, center {layer.center}, scale {layer.scale}, rms "
            f"{layer.rms_scaling}) differs from the model's: CTranslate2 has one epsilon and plain layer norms"
        )
    spec.gamma, spec.beta = _value(layer.gamma), _value(layer.beta)


def _set_stack(spec: Any, backbone: keras.Model, epsilon: float) -> None:
    """Embedding, its scale, the position table and (pre-norm) the final layer norm of an encoder or decoder."""
    embedding = backbone.embedding
    embeddings_spec = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings  # encoder: a list
    embeddings_spec.weight = _value(embedding.token_embedding.embeddings)
    spec.scale_embeddings = bool(embedding.scale_embeddings)
    # Our table, not CTranslate2's built-in sinusoid, which concatenates sines and cosines where ours interleaves
    # them; a learned table is weights. In float32 under any policy, like the rest of the weights.
    position = embedding.position_embedding
    if embedding.position == "learned":
        table = _value(position.position_embeddings)
    else:
        sinusoid = SinusoidalPositionEncoding(max_wavelength=position.max_wavelength, dtype="float32")
        rows = max(embedding.sequence_length, SINUSOIDAL_POSITIONS)
        table = _value(sinusoid(np.zeros((1, rows, embedding.embedding_dim), "float32"))[0])
    spec.position_encodings.encodings = table
    if backbone.output_layer_norm is not None:
        _set_layer_norm(spec.layer_norm, backbone.output_layer_norm, epsilon)


def _set_attention(spec: Any, attention: Any, layer_norm: keras.layers.LayerNormalization, epsilon: float) -> None:
    """linear[0] = [Q; K; V] for self-attention, linear[0] = Q and linear[1] = [K; V] for cross-attention, then the
    output projection; heads split the same way (consecutive d_k columns of each projection)."""
    if attention.fused_qkv and not attention.is_cross_attention:
        projections = [[attention.query_key_value_dense]]
    elif attention.fused_qkv:
        projections = [[attention.query_dense], [attention.key_value_dense]]
    elif attention.is_cross_attention:
        projections = [[attention.query_dense], [attention.key_dense, attention.value_dense]]
    else:
        projections = [[attention.query_dense, attention.key_dense, attention.value_dense]]
    for linear_spec, denses in zip(spec.linear, projections + [[attention.output_dense]], strict=True):
        _set_fused_linear(linear_spec, denses)
    _set_layer_norm(spec.layer_norm, layer_norm, epsilon)


def _set_feedforward(spec: Any, layer: Any, epsilon: float) -> None:
    _set_linear(spec.linear_0, layer.feedforward.intermediate_dense)
    _set_linear(spec.linear_1, layer.feedforward.output_dense)
    _set_layer_norm(spec.layer_norm, layer.feedforward_layer_norm, epsilon)
