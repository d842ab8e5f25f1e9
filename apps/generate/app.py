"""The generate app: train → evaluate → export → sample, a GPT (or LSTM/GRU) language model on running text.

What is language modelling's own lives here (the token stream, packed blocks, the AdamW + warmup/cosine recipe, the
whole-split evaluation, the in-process generator and the serving module); the run directory, resume and export are
`kerasllm.runner`'s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from apps.generate.config import GenerateConfig
from apps.generate.datasets import CORPORA, load_text
from apps.generate.serving import GenerateModule
from kerasllm import runner
from kerasllm.data.characters import CharacterTokenizer
from kerasllm.data.pipeline import make_packed_blocks_dataset
from kerasllm.data.tokenizer import END_ID, PAD_ID, SubwordTokenizer
from kerasllm.decoding import compile_search, generate, next_token_log_probs, sampler
from kerasllm.training import MaskedSparseCrossEntropy, Perplexity, WarmupCosineSchedule

# Weight decay shrinks the matrices of the dense and recurrent layers only (GPT-2's recipe): not norms, biases or
# embeddings (decaying the tied embedding would also shrink the output logits).
NO_WEIGHT_DECAY = ["gamma", "beta", "bias", "embeddings"]
EVAL_BATCH_SIZE = 64


def token_stream(tokenizer: Any, text: str, tokenizer_kind: str) -> np.ndarray:
    """The ids of a text as one stream: every character, or (WordPiece) each non-blank line's pieces then [END]."""
    if tokenizer_kind == "characters":
        return tokenizer.tokenize(tf.constant([text])).flat_values.numpy()
    lines = [line for line in text.splitlines() if line.strip()]
    pieces = []
    for start in range(0, len(lines), 4096):
        ids = tokenizer.tokenize(tf.constant(lines[start : start + 4096]))
        pieces.append(tf.concat([ids, tf.fill([ids.nrows(), 1], END_ID)], axis=1).flat_values.numpy())
    return np.concatenate(pieces) if pieces else np.zeros((0,), np.int32)


def context_start_id(tokenizer: Any, tokenizer_kind: str) -> int:
    """The token every prompt is read after, so an empty prompt starts a line: a line break (characters), or
    [END], which ends every line of a WordPiece stream."""
    return tokenizer.token_id("\n") if tokenizer_kind == "characters" else END_ID


class GenerateApp(runner.App):
    """Language modelling on one corpus (`run.json`: the corpus)."""

    name = "generate"
    config_class = GenerateConfig
    vocabularies = ("vocabulary",)

    def tokenizer_class(self, config: GenerateConfig) -> type:
        return CharacterTokenizer if config.tokenizer == "characters" else SubwordTokenizer

    def vocabulary_texts(self, info: dict[str, Any], data_dir: str | None) -> dict[str, list[str]]:
        return {"vocabulary": load_text(info["corpus"], "train", data_dir).splitlines(keepends=True)}

    def datasets(self, run: runner.Run, data_dir: str | None) -> tuple[Any, Any]:
        config, tokenizer = run.config, run.tokenizers["vocabulary"]
        streams = {
            split: token_stream(tokenizer, load_text(run.info["corpus"], split, data_dir), config.tokenizer)
            for split in ("train", "val")
        }
        train = make_packed_blocks_dataset(
            streams["train"], config.max_tokens, config.batch_size, shuffle=True, seed=config.seed, repeat=True
        )
        val = make_packed_blocks_dataset(streams["val"], config.max_tokens, EVAL_BATCH_SIZE, shuffle=False)
        return train, val

    def build_model(
        self, config: GenerateConfig, vocabulary_sizes: dict[str, int], info: dict[str, Any] | None = None
    ) -> keras.Model:
        extra = {"max_length": config.max_tokens} if config.model == "gpt" else {}
        model = config.MODELS[config.model](
            vocabulary_size=vocabulary_sizes["vocabulary"], dtype=config.mixed_precision, **extra, **config.model_args
        )
        model(np.ones((1, 4), "int32"))
        return model

    def compile(self, model: keras.Model, config: GenerateConfig, steps_per_epoch: int | None) -> None:
        decay_steps = config.decay_steps or config.epochs * steps_per_epoch  # default: the whole run
        schedule = WarmupCosineSchedule(
            config.learning_rate, config.warmup_steps, decay_steps, config.min_learning_rate
        )
        optimizer = keras.optimizers.AdamW(
            schedule, weight_decay=config.weight_decay, beta_1=0.9, beta_2=config.beta_2, clipnorm=config.clipnorm
        )
        optimizer.exclude_from_weight_decay(var_names=NO_WEIGHT_DECAY)
        model.compile(
            optimizer=optimizer,
            loss=MaskedSparseCrossEntropy(),
            metrics=[Perplexity()],
            jit_compile=config.jit_compile,
        )

    def serving_module(self, run: runner.Run, model: keras.Model, **options: Any) -> GenerateModule:
        tokenizer = run.tokenizers["vocabulary"]
        return GenerateModule(
            model,
            tokenizer,
            context=run.config.max_tokens,
            context_start_id=context_start_id(tokenizer, run.config.tokenizer),
            end_id=END_ID,
        )


APP = GenerateApp()


def train(
    config: GenerateConfig,
    run_dir: str | Path,
    *,
    corpus: str = "tiny_shakespeare",
    data_dir: str | None = None,
    init_from: str | Path | None = None,
    verbose: int | str = "auto",
) -> keras.callbacks.History | None:
    """Train a language model with `model.fit` (resumes an interrupted run; None for a finished one)."""
    for split in ("train", "val"):  # a missing or empty corpus fails here, before the run directory is written
        load_text(corpus, split, data_dir)
    info = {"corpus": corpus if corpus in CORPORA else str(Path(corpus).resolve())}
    return runner.train(APP, config, run_dir, info, data_dir=data_dir, init_from=init_from, verbose=verbose)


def load_run(run_dir: str | Path) -> runner.Run:
    """A trained generate run: `run.model`, `run.tokenizers["vocabulary"]`, `run.config`, `run.info`."""
    return runner.load_run(APP, run_dir)


def check_sampling(
    max_new_tokens: int, context: int, temperature: float, top_k: int | None, top_p: float | None
) -> None:
    """One clear line for settings a command line should refuse (the serving graph clamps them instead)."""
    if not 1 <= max_new_tokens <= context - 1:
        raise ValueError(f"max_new_tokens must be between 1 and {context - 1} (the model's context - 1)")
    if temperature <= 0:
        raise ValueError("temperature must be positive; for the most likely token at every step use --greedy")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


class Generator:
    """In-process generation from a trained run: the compiled (XLA) cached loop, and token-by-token streaming.

    Prompts are read as the serving graph reads them (after the context-start token, cut to what fits) into a
    buffer as wide as a prompt may be: one compiled program per (settings, batch size), so a call with another
    prompt length does not retrace (keras-hub#779).

    Args:
        run: a loaded generate run.
        jit_compile: XLA-compile the loop (default) or run it as a plain graph.

    Example:
    >>> # generator = Generator(load_run("runs/shakespeare-gpt"))
    >>> # generator(["ROMEO:"], max_new_tokens=64, temperature=0.8, top_k=40, seed=1)[0]["text"]
    """

    def __init__(self, run: runner.Run, *, jit_compile: bool = True):
        self.model = run.model
        self.tokenizer = run.tokenizers["vocabulary"]
        self.context = run.config.max_tokens
        self.start_id = context_start_id(self.tokenizer, run.config.tokenizer)
        self.jit_compile = jit_compile
        self._compiled: dict[tuple, Any] = {}

    def truncates(self, prompt: str | bytes, max_new_tokens: int) -> bool:
        """Whether `prompt` is longer than the context leaves room for beside `max_new_tokens` (its end is read)."""
        return self._prompts([prompt], max_new_tokens)[2][0]

    def _prompts(self, prompts: Sequence[str | bytes], max_new_tokens: int) -> tuple[np.ndarray, np.ndarray, list]:
        encoded = [p.encode("utf-8") if isinstance(p, str) else bytes(p) for p in prompts]
        ids = self.tokenizer.tokenize(tf.constant(encoded, tf.string)).numpy()
        room = self.context - 1 - max_new_tokens
        rows = [[self.start_id, *row[len(row) - room :]] if len(row) > room else [self.start_id, *row] for row in ids]
        # Every prompt buffer is as wide as the most a prompt may keep: one compiled program for any prompt length.
        tokens = np.zeros((len(rows), room + 1), np.int32)
        for i, row in enumerate(rows):
            tokens[i, : len(row)] = row
        return tokens, np.array([len(row) for row in rows], np.int32), [len(row) > room for row in ids]

    def __call__(
        self,
        prompts: Sequence[str | bytes],
        *,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        greedy: bool = False,
    ) -> list[dict[str, Any]]:
        """One dict per prompt: `text` (the continuation), `prompt` (as read, after any cut), `truncated`."""
        check_sampling(max_new_tokens, self.context, 1.0 if greedy else temperature, top_k, top_p)
        options = (
            {"search": "greedy"}
            if greedy
            else {"search": "sample", "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
        )
        key = (max_new_tokens, tuple(sorted(options.items())))
        if key not in self._compiled:
            self._compiled[key] = compile_search(
                generate,
                self.model,
                jit_compile=self.jit_compile,
                max_new_tokens=max_new_tokens,
                end_id=END_ID,
                max_length=self.context,
                **options,
            )
        tokens, lengths, truncated = self._prompts(prompts, max_new_tokens)
        out = self._compiled[key](tokens, lengths)
        texts = self.tokenizer.detokenize(out["tokens"]).numpy()
        read = self.tokenizer.detokenize(tf.ragged.constant([row[1:n] for row, n in zip(tokens, lengths)])).numpy()
        return [
            {"text": text.decode("utf-8"), "prompt": prompt.decode("utf-8"), "truncated": cut}
            for text, prompt, cut in zip(texts, read, truncated)
        ]

    def stream(
        self,
        prompt: str | bytes,
        *,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
        greedy: bool = False,
    ) -> Iterator[str]:
        """The continuation of one prompt, piece by piece as each token is drawn: the compiled prefill, then one
        compiled cached step per token, drawing exactly the tokens `__call__` draws for the same seed."""
        check_sampling(max_new_tokens, self.context, 1.0 if greedy else temperature, top_k, top_p)
        tokens, lengths, _ = self._prompts([prompt], max_new_tokens)
        key = ("step", greedy, temperature, top_k, top_p, seed)
        if key not in self._compiled:
            choose = (
                (lambda log_probs, index: tf.argmax(log_probs, -1))
                if greedy
                else sampler(temperature, top_k, top_p, seed)
            )
            self._compiled[key] = self._step_function(choose)
        step = self._compiled[key]
        cache = self.model.init_cache(1, self.context)
        length = int(lengths[0])
        cache = self._prefill(tokens, np.arange(tokens.shape[1])[None, :] < length - 1, cache)
        token, generated, printed = tokens[:, length - 1], [], ""
        for index in range(length - 1, min(length - 1 + max_new_tokens, self.context - 1)):
            token, cache = step(tf.constant(token), tf.constant(index), cache)
            token = token.numpy()
            if token[0] == END_ID:
                break
            generated.append(int(token[0]))
            text = self.tokenizer.detokenize(tf.constant([generated])).numpy()[0].decode("utf-8", errors="replace")
            yield text[len(printed) :]
            printed = text

    def _prefill(self, tokens: np.ndarray, padding_mask: np.ndarray, cache: Any) -> Any:
        """The cache after the positions `padding_mask` marks (as `generate` prefills: later slots get rewritten)."""
        if "prefill" not in self._compiled:
            self._compiled["prefill"] = tf.function(
                lambda t, m, c: self.model.call_with_cache(t, c, 0, padding_mask=m)[1], jit_compile=self.jit_compile
            )
        return self._compiled["prefill"](tf.constant(tokens), tf.constant(padding_mask), cache)

    def _step_function(self, choose: Any) -> Any:
        def step(token, index, cache):
            logits, cache = self.model.call_with_cache(token[:, None], cache, index)
            return tf.cast(choose(next_token_log_probs(logits[:, 0], PAD_ID), index), tf.int32), cache

        return tf.function(step, jit_compile=self.jit_compile)


def evaluate(run_dir: str | Path, *, split: str = "val", data_dir: str | None = None) -> dict[str, Any]:
    """Score the whole split in contiguous blocks of the run's context: loss in nats per token, bits per character,
    perplexity; write `eval_<split>.json` with two samples and return the scores."""
    run = load_run(run_dir)
    config, tokenizer = run.config, run.tokenizers["vocabulary"]
    text = load_text(run.info["corpus"], split, data_dir)
    stream = token_stream(tokenizer, text, config.tokenizer)
    blocks = make_packed_blocks_dataset(stream, config.max_tokens, EVAL_BATCH_SIZE, shuffle=False)
    model = run.model
    model.compile(loss=MaskedSparseCrossEntropy(), metrics=[Perplexity()], jit_compile=config.jit_compile)
    started = time.perf_counter()
    scores = model.evaluate(blocks, return_dict=True, verbose=0)
    seconds = time.perf_counter() - started
    nats = math.log(scores["perplexity"])
    scored = (len(stream) - 1) // config.max_tokens * config.max_tokens
    characters_per_token = len(text) / max(len(stream), 1)
    generator = Generator(run)
    samples = {
        str(temperature): generator(
            ["\n" if config.tokenizer == "characters" else ""],
            max_new_tokens=min(200, config.max_tokens - 2),
            temperature=temperature,
            top_k=None,
            seed=1,
        )[0]["text"]
        for temperature in (0.8, 1.0)
    }
    result = {
        "corpus": run.info["corpus"],
        "split": split,
        "tokenizer": config.tokenizer,
        "tokens_scored": scored,
        "loss_nats_per_token": round(nats, 4),
        "bits_per_character": round(nats / math.log(2) / characters_per_token, 4),
        "perplexity": round(scores["perplexity"], 3),
        "seconds": round(seconds, 2),
        "samples": samples,
    }
    runner.write_evaluation(run, split, result)
    return result


def export(
    run_dir: str | Path,
    base_path: str | Path = "saved_models/generate",
    *,
    version: int | None = None,
    serving_dtype: str | None = "float32",
) -> Path:
    """Export a trained run as `base_path/<version>/` for TF Serving, the whole sampling loop inside."""
    return runner.export(APP, run_dir, base_path, version=version, serving_dtype=serving_dtype)
