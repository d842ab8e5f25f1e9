"""The word2vec app: train → evaluate → export → neighbours, skip-gram or CBOW word vectors trained with model.fit.

What is word2vec's own lives here (the corpus choice, the word vocabulary with counts, the examples pipeline, the
SGD recipe, the benchmark scores and the vector files); the run directory, resume and the SavedModel export are
`kerasllm.runner`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from apps.word2vec.config import Word2VecConfig
from apps.word2vec.evaluation import evaluate_vectors
from apps.word2vec.serving import Word2VecModule
from kerasllm import runner
from kerasllm.data.english import english_corpus
from kerasllm.data.readers import read_text
from kerasllm.data.skipgrams import Vocabulary, count_words, examples_per_epoch, word2vec_dataset
from kerasllm.data.word_vectors import FORMATS, WordVectors, write_projector, write_word_vectors
from kerasllm.tasks import NegativeSamplingLoss, Word2Vec, word2vec_learning_rate

# Corpus names and the `english_corpus` rule each reads; anything else is the path of a text file.
CORPORA = {"english": "all", "english-train": "train", "sample": None}
EXPORT_FORMATS = (*FORMATS, "projector")


def corpus_texts(corpus: str, data_dir: str | None = None) -> list[str]:
    """The texts of a corpus name (`CORPORA`) or of a UTF-8 text file (its non-blank lines).

    Raises:
        FileNotFoundError: the corpus's files are missing.
        ValueError: it holds no text.
    """
    if corpus == "sample":
        texts = english_corpus(sources=["sample"]).texts
    elif corpus in CORPORA:
        texts = english_corpus(CORPORA[corpus], data_dir=data_dir).texts
    else:
        texts = read_text(corpus).lines
    if not texts:
        raise ValueError(f"corpus {corpus} holds no text: give a file with words in it")
    return texts


class Word2VecApp(runner.App):
    """Word vectors from one corpus (`run.json`: the corpus). No validation set: the run keeps its last epoch's
    vectors (word2vec's rate decays to almost nothing over the whole run), and the benchmarks (`evaluate`) are
    the measure."""

    name = "word2vec"
    config_class = Word2VecConfig
    vocabularies = ("vocabulary",)
    monitor = None

    def tokenizer_class(self, config: Word2VecConfig) -> type:
        return Vocabulary

    def train_tokenizer(self, config: Word2VecConfig, name: str, texts: list[str]) -> Vocabulary:
        return Vocabulary.from_counts(count_words(texts), config.min_count, config.vocabulary_size)

    def vocabulary_texts(self, info: dict[str, Any], data_dir: str | None) -> dict[str, list[str]]:
        return {"vocabulary": corpus_texts(info["corpus"], data_dir)}

    def datasets(self, run: runner.Run, data_dir: str | None) -> tuple[Any, None]:
        config, vocabulary = run.config, run.tokenizers["vocabulary"]
        sentences = vocabulary.encode(corpus_texts(run.info["corpus"], data_dir))
        settings = dict(architecture=config.architecture, window=config.window, subsample=config.subsample)
        examples = examples_per_epoch(sentences, vocabulary, seed=config.seed, **settings)
        if examples < config.batch_size:
            raise ValueError(
                f"the corpus makes {examples} examples per epoch, fewer than one batch of {config.batch_size}: "
                "give more text or a smaller batch_size"
            )
        print(f"{len(vocabulary):,} words, {examples:,} examples per epoch")
        train = word2vec_dataset(
            sentences,
            vocabulary,
            negatives=config.negatives,
            ns_exponent=config.ns_exponent,
            batch_size=config.batch_size,
            steps_per_epoch=examples // config.batch_size,
            seed=config.seed,
            **settings,
        )
        return train, None

    def build_model(
        self, config: Word2VecConfig, vocabulary_sizes: dict[str, int], info: dict[str, Any] | None = None
    ) -> keras.Model:
        model = Word2Vec(vocabulary_sizes["vocabulary"], **config.model_args)
        window = 1 if config.architecture == "skipgram" else 2 * config.window
        model(
            {
                "input_words": np.zeros((1, window), "int32"),
                "input_mask": np.ones((1, window), bool),
                "candidates": np.zeros((1, 1 + config.negatives), "int32"),
            }
        )
        return model

    def compile(self, model: keras.Model, config: Word2VecConfig, steps_per_epoch: int | None) -> None:
        rate = word2vec_learning_rate(
            config.alpha, config.batch_size, config.epochs * steps_per_epoch, config.min_alpha
        )
        model.compile(
            optimizer=keras.optimizers.SGD(rate),
            loss=NegativeSamplingLoss(),
            jit_compile=config.jit_compile,
            steps_per_execution=config.steps_per_execution,
        )

    def serving_module(self, run: runner.Run, model: keras.Model, **options: Any) -> Word2VecModule:
        return Word2VecModule(model, run.tokenizers["vocabulary"], **options)


APP = Word2VecApp()


def train(
    config: Word2VecConfig,
    run_dir: str | Path,
    *,
    corpus: str = "english",
    data_dir: str | None = None,
    init_from: str | Path | None = None,
    verbose: int | str = "auto",
) -> keras.callbacks.History | None:
    """Train word vectors with `model.fit` (resumes an interrupted run; None for a finished one)."""
    corpus_texts(corpus, data_dir)  # a missing or empty corpus fails here, before the run directory is written
    info = {"corpus": corpus if corpus in CORPORA else str(Path(corpus).resolve())}
    return runner.train(APP, config, run_dir, info, data_dir=data_dir, init_from=init_from, verbose=verbose)


def load_vectors(run_dir: str | Path) -> WordVectors:
    """A trained run's word vectors, most frequent word first."""
    return _vectors(runner.load_run(APP, run_dir))


def _vectors(run: runner.Run) -> WordVectors:
    return WordVectors(list(run.tokenizers["vocabulary"].words), run.model.word_vectors())


def evaluate(run_dir: str | Path, restrict_vocab: int = 30000) -> dict[str, Any]:
    """WordSim-353 and SimLex-999 Spearman and Google analogy accuracy, with coverage; writes eval_benchmarks.json."""
    run = runner.load_run(APP, run_dir)
    result = evaluate_vectors(_vectors(run), restrict_vocab)
    runner.write_evaluation(run, "benchmarks", result)
    return result


def export_vectors(run_dir: str | Path, path: str | Path, file_format: str) -> Path:
    """Write a run's vectors as GloVe text, word2vec text or binary, or TensorBoard projector files (a folder)."""
    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}, got {file_format!r}")
    vectors = load_vectors(run_dir)
    if file_format == "projector":
        return write_projector(vectors, path)
    write_word_vectors(vectors, path, file_format)
    return Path(path)
