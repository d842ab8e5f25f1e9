"""kerasllm.data: corpora, the subword tokenizer and the tf.data input pipelines.

Modules: `corpus` (corpus types), `readers` (file formats), `registry` (`load`, `verify`, the corpus
list), `splits` (stratified hold-outs), `tokenizer` (WordPiece `SubwordTokenizer`), `pipeline` (bucketed
tf.data datasets), `windows` (sliding windows over long texts), `stats`, `demo`, `make_sample` (rebuilds the
embedded samples).

The TensorFlow-based names are imported on first use, so `kerasllm data list` and
`kerasllm.data.load` stay fast.

Example:
    >>> from kerasllm import data
    >>> corpus = data.load("sample", "train")
    >>> vocabulary = data.train_wordpiece_vocabulary(corpus.sources, 2000)  # doctest: +SKIP
"""

from importlib import import_module

from kerasllm.data.corpus import LabelledCorpus, ParallelCorpus, QACorpus, QARecord, ReadReport, TextCorpus
from kerasllm.data.registry import CORPORA, load, verify

_LAZY = {
    "kerasllm.data.tokenizer": [
        "SubwordTokenizer",
        "train_wordpiece_vocabulary",
        "save_vocabulary",
        "load_vocabulary",
        "PAD_ID",
        "UNK_ID",
        "START_ID",
        "END_ID",
        "RESERVED_TOKENS",
        "MASK",
        "SEP",
        "CLS",
        "BERT_SPECIAL_TOKENS",
        "byte_spans_to_char_spans",
    ],
    "kerasllm.data.pipeline": [
        "make_seq2seq_dataset",
        "make_classification_dataset",
        "make_language_model_dataset",
        "measure_batches",
        "BatchStats",
    ],
    "kerasllm.data.windows": ["window_starts", "sliding_windows", "aggregate_windows", "WINDOW_AGGREGATIONS"],
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "CORPORA",
    "LabelledCorpus",
    "ParallelCorpus",
    "QACorpus",
    "QARecord",
    "ReadReport",
    "TextCorpus",
    "load",
    "verify",
    *_LAZY_NAMES,
]


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        return getattr(import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'kerasllm.data' has no attribute {name!r}")
