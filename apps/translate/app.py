"""The translation app: train → evaluate → export → predict, on any registered parallel corpus.

What is translation's own lives here (its datasets, model, compile recipe, in-process translator, sacreBLEU
evaluation and serving module); the run directory, resume, `--init-from` and export are `kerasllm.runner`'s.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from apps.translate.config import TranslateConfig
from apps.translate.serving import TranslateModule
from kerasllm import data, runner
from kerasllm.data.pipeline import make_seq2seq_dataset
from kerasllm.data.tokenizer import PAD, START, SubwordTokenizer
from kerasllm.decoding import SEARCHES, compile_search
from kerasllm.export import ctranslate2 as ctranslate2_export
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


def ctranslate2_search_options(decoding: dict[str, Any]) -> dict[str, Any]:
    """A run's decoding options as CTranslate2 runs them: `search` "greedy" or "beam", and every option of that
    search with its default filled in (`max_length`, `length_ratio`, `length_offset`; `beam_size`, `alpha`).

    Raises:
        ValueError: the search is not greedy or beam (CTranslate2's sampling draws differently from ours).
    """
    search = decoding.get("search", "beam")
    if search not in ("greedy", "beam"):
        raise ValueError(f"CTranslate2 runs greedy or beam search, not {search!r}: pass --search greedy or beam")
    parameters = inspect.signature(SEARCHES[search]).parameters
    names = ("max_length", "length_ratio", "length_offset") + (("beam_size", "alpha") if search == "beam" else ())
    return {"search": search, **{name: decoding.get(name, parameters[name].default) for name in names}}


class CTranslate2Translator:
    """In-process translation with a CTranslate2 export (`export_ctranslate2`): our tokenizers around
    `ctranslate2.Translator.translate_batch`, with our search's rules.

    As in our own search, each output is capped at `ceil(length_ratio × source tokens) + length_offset` tokens
    (END included, and at most `max_length - 1`), [PAD] and [START] are never emitted, END may come first (an empty
    translation) and an empty source gives an empty translation. Greedy search gives our tokens exactly at float32;
    beam search normalizes by CTranslate2's length penalty, length^alpha, where ours divides by GNMT's
    ((5 + length) / 6)^alpha, so beams may rank differently.

    Args:
        model_dir: a CTranslate2 model directory.
        source_tokenizer, target_tokenizer: the run's tokenizers (the directory's `source.vocab`, `target.vocab`).
        decoding: search options (`search` "greedy" or "beam", `beam_size`, `alpha`, `max_length`, ...).
        max_source_length: source tokens kept (the run's `max_tokens`, as in training and serving).
        intra_threads: CPU threads CTranslate2 uses for one batch.
    """

    def __init__(
        self,
        model_dir: str | Path,
        source_tokenizer: SubwordTokenizer,
        target_tokenizer: SubwordTokenizer,
        decoding: dict[str, Any],
        *,
        max_source_length: int,
        intra_threads: int = 1,
    ):
        self.options = ctranslate2_search_options(decoding)
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.max_source_length = max_source_length
        self._target_ids = {token: index for index, token in enumerate(target_tokenizer.vocabulary)}
        self._translator = ctranslate2_export.import_ctranslate2().Translator(
            str(model_dir), device="cpu", intra_threads=intra_threads
        )

    @classmethod
    def from_directory(
        cls, path: str | Path, decoding: dict[str, Any] | None = None, **kwargs: Any
    ) -> CTranslate2Translator:
        """The translator of a directory written by `export_ctranslate2`, with its stored decoding unless given."""
        path = Path(path)
        settings_file = path / ctranslate2_export.SETTINGS_FILE
        if not (path / "model.bin").exists() or not settings_file.exists():
            what = "does not exist" if not path.exists() else "is not a translate CTranslate2 export"
            raise FileNotFoundError(
                f"{path} {what}: pass a directory written by `kerasllm translate export --format ctranslate2`"
            )
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
        return cls(
            path,
            SubwordTokenizer.load(path / ctranslate2_export.SOURCE_VOCABULARY_FILE),
            SubwordTokenizer.load(path / ctranslate2_export.TARGET_VOCABULARY_FILE),
            decoding or settings["decoding"],
            max_source_length=settings["max_source_length"],
            **kwargs,
        )

    def translate_ids(self, texts: Sequence[str | bytes], batch_size: int = 64) -> list[list[int]]:
        """The target ids of each text's translation, END excluded (our search's tokens before END)."""
        if not texts:
            return []
        options = self.options
        search = dict(beam_size=options.get("beam_size", 1), length_penalty=options.get("alpha", 1.0))
        vocabulary = self.source_tokenizer.vocabulary
        sources = [
            [vocabulary[i] for i in row[: self.max_source_length]]
            for row in self.source_tokenizer.tokenize(list(texts)).to_list()
        ]
        outputs: list[list[int]] = [[] for _ in texts]
        by_length = sorted((i for i, source in enumerate(sources) if source), key=lambda i: len(sources[i]))
        # Sources of one length share a budget, and CTranslate2 takes one max_decoding_length per call.
        for length, group in itertools.groupby(by_length, key=lambda i: len(sources[i])):
            group = list(group)
            # In float32, as our search computes it, so that ceil() rounds alike.
            scaled = np.float32(options["length_ratio"]) * np.float32(length)
            budget = min(math.ceil(scaled) + options["length_offset"], options["max_length"] - 1)
            if budget <= 1:  # only the forced END fits: an empty translation, as ours
                continue
            results = self._translator.translate_batch(
                [sources[i] for i in group],
                max_batch_size=batch_size,
                max_decoding_length=budget - 1,  # tokens before END: our budget counts END
                min_decoding_length=0,
                max_input_length=0,  # truncated above, to max_source_length
                suppress_sequences=[[PAD], [START]],
                **search,
            )
            for i, result in zip(group, results, strict=True):
                outputs[i] = [self._target_ids[token] for token in result.hypotheses[0]]
        return outputs

    def __call__(self, texts: Sequence[str | bytes], batch_size: int = 64) -> list[str]:
        """Translate `texts` (str, or bytes that may hold invalid UTF-8)."""
        rows = self.translate_ids(texts, batch_size)
        ids = tf.RaggedTensor.from_row_lengths(
            tf.constant([i for row in rows for i in row], tf.int32), [len(row) for row in rows]
        )
        return [text.decode("utf-8") for text in self.target_tokenizer.detokenize(ids).numpy()]


def export_ctranslate2(
    run_dir: str | Path,
    out_dir: str | Path,
    quantization: str | None = None,
    *,
    decoding: dict[str, Any] | None = None,
) -> Path:
    """Write a trained Transformer run as a CTranslate2 model directory that `CTranslate2Translator.from_directory`
    (and `kerasllm translate predict --ctranslate2 DIR`) runs alone: the model, the run's vocabularies, and
    `kerasllm.json` with the decoding (the run's config unless given), `max_source_length` and the run's corpus.

    Args:
        run_dir: a trained run directory.
        out_dir: the directory to write (must not exist yet, or be empty).
        quantization: a `kerasllm.export.ctranslate2.QUANTIZATIONS` weight type, or None for float32.
        decoding: search options to store instead of the run's (greedy or beam).
    """
    run = load_run(run_dir)
    decoding = dict(decoding or run.config.decoding)
    ctranslate2_search_options(decoding)  # refuse a search CTranslate2 cannot run before writing anything
    settings = {"decoding": decoding, "max_source_length": run.config.max_tokens, "run": run.info}
    return ctranslate2_export.export_ctranslate2(
        run.model,
        run.tokenizers["source"],
        run.tokenizers["target"],
        out_dir,
        quantization=quantization,
        settings=settings,
    )
