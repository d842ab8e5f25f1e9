"""The translation app: train → evaluate → export → predict, on any registered parallel corpus.

A run directory holds everything a later command needs: `run.json` (corpus, pair, config),
`source.vocab` / `target.vocab`, `best.keras`, `backup/` (resume), `history.csv`, `logs/`,
`finished.json` once `fit` has returned (early stopping, time budget or last epoch), and
`eval_<split>.json` after evaluation. Weights never go into git (`runs/` is ignored).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from apps.translate.config import TranslateConfig
from kerasllm import data
from kerasllm.data.pipeline import make_seq2seq_dataset
from kerasllm.data.tokenizer import SubwordTokenizer, save_vocabulary, train_wordpiece_vocabulary
from kerasllm.decoding import SEARCHES, compile_search
from kerasllm.export import export_translator
from kerasllm.metrics import translation_scores
from kerasllm.models import LSTMSeq2Seq, Transformer
from kerasllm.training import compile_for_training, training_callbacks


def build_model(config: TranslateConfig, source_vocabulary_size: int, target_vocabulary_size: int) -> keras.Model:
    """The configured model, built on a dummy batch so `summary()` and `BackupAndRestore` work."""
    model_class = Transformer if config.model == "transformer" else LSTMSeq2Seq
    model = model_class(source_vocabulary_size=source_vocabulary_size, target_vocabulary_size=target_vocabulary_size,
                        **config.model_args)
    dummy = np.ones((1, 4), "int32")
    model((dummy, dummy))
    return model


def _tokenizers(run_dir: Path, corpus: data.ParallelCorpus | None, config: TranslateConfig):
    """Load the run's vocabularies, training them on the first call."""
    tokenizers = []
    for side in ("source", "target"):
        path = run_dir / f"{side}.vocab"
        if not path.exists():
            texts = corpus.sources if side == "source" else corpus.targets
            save_vocabulary(train_wordpiece_vocabulary(texts, config.vocabulary_size), path)
        tokenizers.append(SubwordTokenizer.load(path))
    return tokenizers


def prepare_training(config: TranslateConfig, run_dir: str | Path, *, corpus: str = "multi30k", pair: str = "en-de",
                     data_dir: str | None = None):
    """The compiled model and the training and validation datasets of a run, as `train` uses them.

    Sets the config's seed and dtype policy, and trains the run's vocabularies on first use.

    Returns:
        `(model, train_set, val_set)`.
    """
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        keras.mixed_precision.set_dtype_policy(config.mixed_precision)
    train_pairs = data.load(corpus, split="train", pair=pair, data_dir=data_dir)
    val_pairs = data.load(corpus, split="val", pair=pair, data_dir=data_dir)
    source_tokenizer, target_tokenizer = _tokenizers(run_dir, train_pairs, config)
    options = dict(max_length=config.max_tokens, tokens_per_batch=config.tokens_per_batch, seed=config.seed)
    # Full batches only: with shuffling, each bucket's last batch has a new size every epoch, and every
    # new shape is a new XLA compilation.
    train_set = make_seq2seq_dataset(train_pairs, source_tokenizer, target_tokenizer, shuffle=True,
                                     drop_remainder=True, **options)
    val_set = make_seq2seq_dataset(val_pairs, source_tokenizer, target_tokenizer, shuffle=False, **options)

    model = build_model(config, source_tokenizer.vocabulary_size, target_tokenizer.vocabulary_size)
    if config.learning_rate is not None:
        compile_for_training(model, learning_rate=config.learning_rate, label_smoothing=config.label_smoothing,
                             clipnorm=config.clipnorm, jit_compile=config.jit_compile)
    else:
        compile_for_training(model, d_model=config.model_args["d_model"], warmup_steps=config.warmup_steps,
                             lr_scale=config.lr_scale, label_smoothing=config.label_smoothing,
                             clipnorm=config.clipnorm, jit_compile=config.jit_compile)
    return model, train_set, val_set


def train(config: TranslateConfig, run_dir: str | Path, *, corpus: str = "multi30k", pair: str = "en-de",
          data_dir: str | None = None, verbose: int | str = "auto") -> keras.callbacks.History | None:
    """Train with `model.fit`; calling it again on the same `run_dir` resumes where it stopped.

    Returns the `fit` history, or None when `run_dir` holds a finished run (nothing is trained).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    finished = run_dir / "finished.json"
    if finished.exists():
        print(f"{run_dir} holds a finished run ({finished.read_text().strip()}); "
              f"delete {finished} to train it further, or give another --out")
        return None
    run_file = run_dir / "run.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if (previous["corpus"], previous["pair"]) != (corpus, pair):
            raise ValueError(f"{run_dir} holds a {previous['corpus']} {previous['pair']} run; use another --out")
    run_file.write_text(json.dumps({"corpus": corpus, "pair": pair}, indent=2) + "\n")
    config.save(run_dir / "config.json")
    model, train_set, val_set = prepare_training(config, run_dir, corpus=corpus, pair=pair, data_dir=data_dir)
    model.summary(print_fn=lambda line, **_: print(line))
    callbacks = training_callbacks(run_dir, early_stopping_patience=config.early_stopping_patience,
                                   budget_minutes=config.time_budget_minutes,
                                   lr_decay_patience=config.lr_decay_patience, lr_decay_factor=config.lr_decay_factor)
    started = time.perf_counter()
    # shuffle=False: the dataset reshuffles itself each epoch (Keras would only warn that it cannot).
    history = model.fit(train_set, validation_data=val_set, epochs=config.epochs, callbacks=callbacks,
                        verbose=verbose, shuffle=False)
    # Only a fit that returned gets here: a killed run leaves no marker and resumes from its backup.
    finished.write_text(json.dumps({"epochs": history.epoch[-1] + 1 if history.epoch else None,
                                    "session_seconds": round(time.perf_counter() - started, 1),
                                    "peak_rss_mb": peak_rss_mb()}) + "\n")
    return history


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def load_run(run_dir: str | Path):
    """(model, source_tokenizer, target_tokenizer, config, run info) of a trained run directory."""
    run_dir = Path(run_dir)
    checkpoint = run_dir / "best.keras"
    if not checkpoint.exists():
        raise FileNotFoundError(f"no best.keras in {run_dir}: train first with `kerasllm translate train --out {run_dir}`")
    config = TranslateConfig.load(run_dir / "config.json")
    try:
        model = keras.saving.load_model(checkpoint)
    except Exception as error:  # a truncated or foreign file: say which and what to do.
        raise ValueError(f"cannot load {checkpoint} ({type(error).__name__}: {error}); "
                         f"resume training to rewrite it, or delete the run directory") from None
    source_tokenizer = SubwordTokenizer.load(run_dir / "source.vocab")
    target_tokenizer = SubwordTokenizer.load(run_dir / "target.vocab")
    return model, source_tokenizer, target_tokenizer, config, json.loads((run_dir / "run.json").read_text())


class Translator:
    """In-process translation with the compiled, cached search (the SavedModel runs the same search).

    Args:
        model, source_tokenizer, target_tokenizer: a trained run's pieces.
        decoding: search options (`search`, `beam_size`, `alpha`, `max_length`, ...).
        max_source_length: source tokens kept.
        jit_compile: XLA-compile the search.
    """

    def __init__(self, model, source_tokenizer, target_tokenizer, decoding: dict[str, Any], *,
                 max_source_length: int = 128, jit_compile: bool = True):
        options = dict(decoding)
        search = SEARCHES[options.pop("search", "beam")]
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.max_source_length = max_source_length
        self._search = compile_search(search, model, jit_compile=jit_compile, **options)

    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> list[str]:
        """Translate `texts`, batching sources of similar length together."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        outputs: list[str] = [""] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
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


def evaluate(run_dir: str | Path, *, split: str = "test2016", data_dir: str | None = None, limit: int | None = None,
             decoding: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decode a split, score it with sacreBLEU, write `eval_<split>.json` (scores, every hypothesis) and return it."""
    run_dir = Path(run_dir)
    model, source_tokenizer, target_tokenizer, config, run = load_run(run_dir)
    pairs = data.load(run["corpus"], split=split, pair=run["pair"], data_dir=data_dir)
    sources, references = pairs.sources[:limit], pairs.targets[:limit]
    decoding = decoding or config.decoding
    translator = Translator(model, source_tokenizer, target_tokenizer, decoding)
    started = time.perf_counter()
    hypotheses = translator(sources)
    seconds = time.perf_counter() - started
    result = {"split": split, "segments": len(sources), "decoding": decoding, "seconds": round(seconds, 2),
              **translation_scores(hypotheses, references),
              "examples": [{"source": s, "reference": r, "hypothesis": h}
                           for s, r, h in list(zip(sources, references, hypotheses))[:5]],
              "hypotheses": hypotheses}
    (run_dir / f"eval_{split}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def export(run_dir: str | Path, base_path: str | Path = "saved_models/translate", *, version: int | None = None,
           decoding: dict[str, Any] | None = None, serving_dtype: str | None = "float32") -> Path:
    """Export a trained run as `base_path/<version>/` for TF Serving (decoding: the run's config unless given)."""
    model, source_tokenizer, target_tokenizer, config, _ = load_run(run_dir)
    return export_translator(model, source_tokenizer, target_tokenizer, base_path, version=version,
                             serving_dtype=serving_dtype, max_source_length=config.model_args.get("max_length", 128),
                             **(decoding or config.decoding))
