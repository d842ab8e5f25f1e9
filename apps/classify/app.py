"""The classify app: train → evaluate → export → predict, on SST-2, AG News, SMS spam or the embedded SMS sample.

What is classification's own lives here (its splits, model, compile recipe, windowed in-process classifier,
metrics and serving module); the run directory, resume, `--init-from` and export are `kerasllm.runner`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from apps.classify.config import ClassifyConfig
from apps.classify.datasets import CAVEATS, CORPORA, load_split
from apps.classify.serving import ClassifyModule
from kerasllm import runner
from kerasllm.data.pipeline import make_classification_dataset
from kerasllm.data.tokenizer import BERT_SPECIAL_TOKENS, CLS, RESERVED_TOKENS
from kerasllm.data.word_vectors import WordVectors, aligned_matrix, read_word_vectors
from kerasllm.metrics import classification_scores, plot_confusion_matrix

# Classify vocabularies reserve BERT's special tokens, so a pre-trained encoder's vocabulary (--init-from) and a
# classifier's agree; [CLS] therefore has this id in every classify vocabulary.
CLS_ID = len(RESERVED_TOKENS) + BERT_SPECIAL_TOKENS.index(CLS)


class ClassifyApp(runner.App):
    """Text classification on one corpus (`run.json`: corpus, its class names and training-set class shares)."""

    name = "classify"
    config_class = ClassifyConfig
    vocabularies = ("vocabulary",)

    def vocabulary_texts(self, info: dict[str, Any], data_dir: str | None) -> dict[str, list[str]]:
        return {"vocabulary": load_split(info["corpus"], "train", data_dir).texts}

    def special_tokens(self, name: str) -> tuple[str, ...]:
        return BERT_SPECIAL_TOKENS

    def datasets(self, run: runner.Run, data_dir: str | None) -> tuple[Any, Any]:
        config = run.config
        options = dict(max_length=config.max_tokens, tokens_per_batch=config.tokens_per_batch, seed=config.seed)
        tokenizer = run.tokenizers["vocabulary"]
        train = load_split(run.info["corpus"], "train", data_dir)
        val = load_split(run.info["corpus"], "val", data_dir)
        return (
            make_classification_dataset(train, tokenizer, shuffle=True, **options),
            make_classification_dataset(val, tokenizer, shuffle=False, **options),
        )

    def build_model(
        self, config: ClassifyConfig, vocabulary_sizes: dict[str, int], info: dict[str, Any] | None = None
    ) -> keras.Model:
        extra = {"cls_id": CLS_ID} if config.model == "transformer" else {}
        model = config.MODELS[config.model](
            vocabulary_size=vocabulary_sizes["vocabulary"],
            num_classes=len(info["label_names"]) if info else 2,
            embedding_trainable=config.embeddings_trainable,
            dtype=config.mixed_precision,
            **extra,
            **config.model_args,
        )
        model(np.ones((1, 4), "int32"))
        return model

    def compile(self, model: keras.Model, config: ClassifyConfig, steps_per_epoch: int | None) -> None:
        # The rate is constant, per-epoch or warmup + inverse square root: none needs the run's length.
        optimizer_options = dict(learning_rate=config.learning_rate, clipnorm=config.clipnorm)
        optimizer = (
            keras.optimizers.AdamW(weight_decay=config.weight_decay, **optimizer_options)
            if config.weight_decay
            else keras.optimizers.Adam(**optimizer_options)
        )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=config.jit_compile,
        )

    def serving_module(self, run: runner.Run, model: keras.Model, **options: Any) -> ClassifyModule:
        return ClassifyModule(
            model,
            run.tokenizers["vocabulary"],
            label_names=run.info["label_names"],
            prior=run.info["prior"],
            window=run.config.max_tokens,
            stride=run.config.window_stride,
            aggregate=options.get("aggregate") or run.config.aggregate,
        )


APP = ClassifyApp()


def run_info(corpus: str, data_dir: str | None = None) -> dict[str, Any]:
    """What a run on `corpus` trains on: the corpus, its class names and each class's share of its train split."""
    train = load_split(corpus, "train", data_dir)
    counts = np.bincount(train.labels, minlength=len(train.label_names))
    return {
        # A file is stored by its absolute path, so evaluate and export find it from any working directory.
        "corpus": corpus if corpus in CORPORA else str(Path(corpus).resolve()),
        "label_names": list(train.label_names),
        "prior": [round(float(share), 6) for share in counts / counts.sum()],
    }


def train(
    config: ClassifyConfig,
    run_dir: str | Path,
    *,
    corpus: str = "sst2",
    data_dir: str | None = None,
    init_from: str | Path | None = None,
    verbose: int | str = "auto",
) -> keras.callbacks.History | None:
    """Train a classifier with `model.fit` (resumes an interrupted run; None for a finished one).

    With `config.embeddings`, a new run starts its token embedding from those word vectors, prints how many
    vocabulary tokens had one ("Converted N words (M misses)") and records it in `embeddings.json`; a resume
    restores its backup instead, and does not read the file again.
    """
    info = run_info(corpus, data_dir)
    for split in ("val", "test"):  # a corpus that cannot be split fails here, before the run directory is written
        load_split(info["corpus"], split, data_dir)
    initialize = None
    # The runner's test for a new run; the vectors are read and checked before it writes anything.
    if config.embeddings is not None and not (Path(run_dir) / "config.json").exists():
        if init_from is not None:
            raise ValueError(
                f"embeddings ({config.embeddings}) and --init-from ({init_from}) both give the token embedding its "
                "start: use one of them"
            )
        initialize = functools.partial(_start_from_vectors, read_embeddings(config))
    return runner.train(
        APP, config, run_dir, info, data_dir=data_dir, init_from=init_from, verbose=verbose, initialize=initialize
    )


def read_embeddings(config: ClassifyConfig) -> WordVectors:
    """The word vectors of `config.embeddings`, checked against the width of the model's token embedding.

    Args:
        config: a config whose `embeddings` is set.

    Returns:
        The vectors (`read_word_vectors`, format detected).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a damaged file (the reader's line), or vectors whose dim is not `config.embedding_width`.

    Example:
    >>> # config = ClassifyConfig.load("bilstm"); config.embeddings = "glove.6B.100d.txt"
    >>> # read_embeddings(config)  # ValueError: ... set model_args.embedding_dim to 100
    """
    vectors = read_word_vectors(config.embeddings)
    if vectors.dim != config.embedding_width:
        name = config.EMBEDDING_WIDTH_ARGS[config.model]
        what = " (the Transformer's width, a multiple of num_heads)" if config.model == "transformer" else ""
        raise ValueError(
            f"{config.embeddings} holds vectors of dim {vectors.dim}, but the {config.model} model's token embedding "
            f"is {config.embedding_width} wide: set model_args.{name}{what} to {vectors.dim}"
        )
    return vectors


def _start_from_vectors(vectors: WordVectors, model: keras.Model, run: runner.Run) -> None:
    """Load the vectors into the token embedding of a new run, row by vocabulary token, and report the hits."""
    config = run.config
    matrix, report = aligned_matrix(
        vectors, run.tokenizers["vocabulary"].vocabulary, oov=config.embeddings_oov, seed=config.seed
    )
    model.token_embedding.set_weights([matrix])
    print(f"token embedding from {config.embeddings}: {report}")
    record = {
        "source": str(Path(config.embeddings).resolve()),
        "format": vectors.report.format,
        "words": len(vectors),
        "dim": vectors.dim,
        "trainable": config.embeddings_trainable,
        **dataclasses.asdict(report),
    }
    (run.run_dir / "embeddings.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def load_run(run_dir: str | Path) -> runner.Run:
    """A trained classify run: `run.model`, `run.tokenizers["vocabulary"]`, `run.config`, `run.info`."""
    return runner.load_run(APP, run_dir)


class Classifier:
    """In-process classification through the serving graph itself (windows, aggregation and the empty-text prior).

    Args:
        module: a `ClassifyModule`.

    Example:
    >>> # classifier = Classifier.from_run(load_run("runs/sst2-bilstm"))
    >>> # classifier(["a gripping, funny film"])["label"]  # ["positive"]
    """

    def __init__(self, module: ClassifyModule):
        self.module = module

    @classmethod
    def from_run(cls, run: runner.Run, aggregate: str | None = None) -> Classifier:
        return cls(APP.serving_module(run, run.model, aggregate=aggregate))

    def __call__(self, texts: Sequence[str | bytes], batch_size: int = 128) -> dict[str, Any]:
        """`label` (list of str), `class_id` [N], `probabilities` [N, C] and `windows` [N] for `texts` (str, or
        bytes that may hold invalid UTF-8), classified in batches through tf.data."""
        encoded = [text.encode("utf-8") if isinstance(text, str) else bytes(text) for text in texts]
        batches = tf.data.Dataset.from_tensor_slices(tf.constant(encoded, tf.string)).batch(batch_size).prefetch(2)
        probabilities, windows, labels = [], [], []
        for batch in batches:
            outputs = self.module.serve(batch)
            probabilities.append(outputs["probabilities"].numpy())
            windows.append(outputs["windows"].numpy())
            labels += [label.decode("utf-8") for label in outputs["label"].numpy()]
        classes = len(self.module.label_names)
        probabilities = np.concatenate(probabilities) if probabilities else np.zeros((0, classes), "float32")
        return {
            "label": labels,
            "class_id": probabilities.argmax(axis=-1),
            "probabilities": probabilities,
            "windows": np.concatenate(windows) if windows else np.zeros((0,), "int32"),
        }


def evaluate(
    run_dir: str | Path,
    *,
    split: str = "test",
    data_dir: str | None = None,
    aggregate: str | None = None,
) -> dict[str, Any]:
    """Classify a split, score it, write `eval_<split>.json` and `confusion_<split>.png` and return the scores.

    The scores are `kerasllm.metrics.classification_scores` (accuracy, macro and per-class P/R/F1, MCC, confusion
    matrix) plus the windows used (texts longer than the window are read in several) and the time taken.
    """
    run = load_run(run_dir)
    corpus = load_split(run.info["corpus"], split, data_dir)
    label_names = run.info["label_names"]
    if list(corpus.label_names) != list(label_names):
        raise ValueError(f"{run_dir} was trained on classes {label_names}, but {split} has {corpus.label_names}")
    classifier = Classifier.from_run(run, aggregate)
    started = time.perf_counter()
    outputs = classifier(corpus.texts)
    seconds = time.perf_counter() - started
    predictions = outputs["class_id"].tolist()
    scores = classification_scores(corpus.labels, predictions, label_names)
    windows = outputs["windows"]
    wrong = [i for i, (label, prediction) in enumerate(zip(corpus.labels, predictions)) if label != prediction]
    result = {
        "corpus": run.info["corpus"],
        "split": split,
        **({"caveat": CAVEATS[run.info["corpus"]]} if run.info["corpus"] in CAVEATS else {}),
        "aggregate": aggregate or run.config.aggregate,
        "seconds": round(seconds, 2),
        **scores,
        "windows": {
            "mean": round(float(windows.mean()), 3) if len(windows) else 0.0,
            "max": int(windows.max()) if len(windows) else 0,
            "texts_with_several": int((windows > 1).sum()),
        },
        "errors": [
            {
                "text": corpus.texts[i],
                "label": label_names[corpus.labels[i]],
                "predicted": outputs["label"][i],
                "probability": round(float(outputs["probabilities"][i].max()), 4),
            }
            for i in wrong[:10]
        ],
        "predictions": predictions,
    }
    runner.write_evaluation(run, split, result)
    plot_confusion_matrix(
        scores["confusion"],
        label_names,
        run.run_dir / f"confusion_{split}.png",
        title=f"{run.info['corpus']} {split}: accuracy {scores['accuracy']:.3f}",
    )
    return result


def export(
    run_dir: str | Path,
    base_path: str | Path = "saved_models/classify",
    *,
    version: int | None = None,
    aggregate: str | None = None,
    serving_dtype: str | None = "float32",
) -> Path:
    """Export a trained run as `base_path/<version>/` for TF Serving (window aggregation: the run's unless given)."""
    return runner.export(APP, run_dir, base_path, version=version, serving_dtype=serving_dtype, aggregate=aggregate)
