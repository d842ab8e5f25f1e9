"""The translation app: train → evaluate → export → predict, on any registered parallel corpus.

What is translation's own lives here (its datasets, model, compile recipe, in-process translator, sacreBLEU
evaluation and serving module); the run directory, resume, `--init-from` and export are `kerasllm.runner`'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from apps.translate.config import TranslateConfig
from apps.translate.serving import TranslateModule
from kerasllm import data, runner
from kerasllm.data.pipeline import make_seq2seq_dataset
from kerasllm.data.tokenizer import SubwordTokenizer
from kerasllm.decoding import SEARCHES, compile_search
from kerasllm.metrics import translation_scores
from kerasllm.training import compile_for_training


class TranslateApp(runner.App):
    """Translation between the two sides of a parallel corpus (`run.json`: corpus and pair)."""

    name = "translate"
    config_class = TranslateConfig
    vocabularies = ("source", "target")

    def vocabulary_texts(self, info: dict[str, Any], data_dir: str | None) -> dict[str, list[str]]:
        pairs = data.load(info["corpus"], split="train", pair=info["pair"], data_dir=data_dir)
        return {"source": pairs.sources, "target": pairs.targets}

    def datasets(self, run: runner.Run, data_dir: str | None) -> tuple[Any, Any]:
        config = run.config
        options = dict(max_length=config.max_tokens, tokens_per_batch=config.tokens_per_batch, seed=config.seed)
        splits = [
            data.load(run.info["corpus"], split=split, pair=run.info["pair"], data_dir=data_dir)
            for split in ("train", "val")
        ]
        source, target = run.tokenizers["source"], run.tokenizers["target"]
        # Full training batches only: with shuffling, each bucket's last batch has a new size every epoch, and
        # every new shape is a new XLA compilation.
        train_set = make_seq2seq_dataset(splits[0], source, target, shuffle=True, drop_remainder=True, **options)
        val_set = make_seq2seq_dataset(splits[1], source, target, shuffle=False, **options)
        return train_set, val_set

    def build_model(
        self, config: TranslateConfig, vocabulary_sizes: dict[str, int], info: dict[str, Any] | None = None
    ) -> keras.Model:
        model = config.MODELS[config.model](
            source_vocabulary_size=vocabulary_sizes["source"],
            target_vocabulary_size=vocabulary_sizes["target"],
            dtype=config.mixed_precision,
            **config.model_args,
        )
        dummy = np.ones((1, 4), "int32")
        model((dummy, dummy))
        return model

    def compile(self, model: keras.Model, config: TranslateConfig, steps_per_epoch: int | None) -> None:
        # The rate is constant, per-epoch or warmup + inverse square root: none needs the run's length.
        recipe = dict(label_smoothing=config.label_smoothing, clipnorm=config.clipnorm, jit_compile=config.jit_compile)
        if config.learning_rate is not None:
            compile_for_training(model, learning_rate=config.learning_rate, **recipe)
        else:
            compile_for_training(
                model,
                hidden_dim=config.model_args["hidden_dim"],
                warmup_steps=config.warmup_steps,
                lr_scale=config.lr_scale,
                **recipe,
            )

    def serving_module(self, run: runner.Run, model: keras.Model, **decoding: Any) -> TranslateModule:
        return TranslateModule(
            model,
            run.tokenizers["source"],
            run.tokenizers["target"],
            max_source_length=run.config.max_tokens,
            **(decoding or run.config.decoding),
        )


APP = TranslateApp()


def train(
    config: TranslateConfig,
    run_dir: str | Path,
    *,
    corpus: str = "multi30k",
    pair: str = "en-de",
    data_dir: str | None = None,
    init_from: str | Path | None = None,
    verbose: int | str = "auto",
) -> keras.callbacks.History | None:
    """Train a translator with `model.fit` (resumes an interrupted run; None for a finished one)."""
    return runner.train(
        APP, config, run_dir, {"corpus": corpus, "pair": pair}, data_dir=data_dir, init_from=init_from, verbose=verbose
    )


def load_run(run_dir: str | Path) -> runner.Run:
    """A trained translate run: `run.model`, `run.tokenizers["source" | "target"]`, `run.config`, `run.info`."""
    return runner.load_run(APP, run_dir)


class Translator:
    """In-process translation with the compiled, cached search (the SavedModel runs the same search).

    Args:
        model, source_tokenizer, target_tokenizer: a trained run's pieces.
        decoding: search options (`search`, `beam_size`, `alpha`, `max_length`, ...).
        max_source_length: source tokens kept (the run's `max_tokens`, as in training and serving).
        jit_compile: XLA-compile the search.
    """

    def __init__(
        self,
        model: keras.Model,
        source_tokenizer: SubwordTokenizer,
        target_tokenizer: SubwordTokenizer,
        decoding: dict[str, Any],
        *,
        max_source_length: int,
        jit_compile: bool = True,
    ):
        options = dict(decoding)
        search = SEARCHES[options.pop("search", "beam")]
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.max_source_length = max_source_length
        self._search = compile_search(
            search,
            model,
            jit_compile=jit_compile,
            start_id=target_tokenizer.start_id,
            end_id=target_tokenizer.end_id,
            **options,
        )

    @classmethod
    def from_run(cls, run: runner.Run, decoding: dict[str, Any] | None = None, **kwargs: Any) -> Translator:
        """The translator of a loaded run, with its config's decoding unless `decoding` is given."""
        return cls(
            run.model,
            run.tokenizers["source"],
            run.tokenizers["target"],
            decoding or run.config.decoding,
            max_source_length=run.config.max_tokens,
            **kwargs,
        )

    def __call__(self, texts: Sequence[str | bytes], batch_size: int = 64) -> list[str]:
        """Translate `texts` (str, or bytes that may hold invalid UTF-8), batching sources of similar length."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        outputs: list[str] = [""] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids = self.source_tokenizer.tokenize([texts[i] for i in chunk])[:, : self.max_source_length]
            # Every call gets batch_size rows (empty ones fill the last chunk), so a compiled search sees
            # one batch size and only the source-length buckets differ.
            ids = ids.to_tensor(shape=[batch_size, None])
            tokens = self._search(ids)["tokens"][: len(chunk)]
            if len(tokens.shape) == 3:
                tokens = tokens[:, 0]
            for i, text in zip(chunk, self.target_tokenizer.detokenize(tokens).numpy()):
                outputs[i] = text.decode("utf-8")
        return outputs


def evaluate(
    run_dir: str | Path,
    *,
    split: str = "test2016",
    data_dir: str | None = None,
    limit: int | None = None,
    decoding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Decode a split, score it with sacreBLEU, write `eval_<split>.json` (scores, every hypothesis) and return it."""
    run = load_run(run_dir)
    pairs = data.load(run.info["corpus"], split=split, pair=run.info["pair"], data_dir=data_dir)
    sources, references = pairs.sources[:limit], pairs.targets[:limit]
    decoding = decoding or run.config.decoding
    translator = Translator.from_run(run, decoding)
    started = time.perf_counter()
    hypotheses = translator(sources)
    seconds = time.perf_counter() - started
    result = {
        "split": split,
        "segments": len(sources),
        "decoding": decoding,
        "seconds": round(seconds, 2),
        **translation_scores(hypotheses, references),
        "examples": [
            {"source": s, "reference": r, "hypothesis": h} for s, r, h in list(zip(sources, references, hypotheses))[:5]
        ],
        "hypotheses": hypotheses,
    }
    runner.write_evaluation(run, split, result)
    return result


def export(
    run_dir: str | Path,
    base_path: str | Path = "saved_models/translate",
    *,
    version: int | None = None,
    decoding: dict[str, Any] | None = None,
    serving_dtype: str | None = "float32",
) -> Path:
    """Export a trained run as `base_path/<version>/` for TF Serving (decoding: the run's config unless given)."""
    return runner.export(APP, run_dir, base_path, version=version, serving_dtype=serving_dtype, **(decoding or {}))
