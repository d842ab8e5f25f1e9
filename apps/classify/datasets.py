"""The classify app's corpora and their train / val / test splits, the same on every machine.

| corpus          | train                          | val                     | test (reported)                  |
| --------------- | ------------------------------ | ----------------------- | -------------------------------- |
| sst2            | GLUE train minus val (95%)     | 5% of GLUE train        | GLUE dev (872 sentences)         |
| ag_news         | 72% of the 7,600-row test file | 8%                      | 20% (1,520): **our split**       |
| sms_spam        | 72% of the 5,574 messages      | 8%                      | 20% (1,114)                      |
| sms_spam_sample | 72% of the embedded 2,000      | 8%                      | 20% (400)                        |

Your own data: `--corpus PATH` to a labelled file (columns `text` and `label`) is split like SMS spam.

Every split is stratified (`kerasllm.data.splits.stratified_split`, seed `SPLIT_SEED`), so each class keeps its
share. The checkpoint is chosen on val, never on the reported split. SST-2's dev set is what GLUE-era papers
report, so its numbers compare with theirs. AG News is different: only its official *test* file is available
here, so we train on 5,472 of its rows instead of the published 120,000, and our AG News numbers are **not
comparable** with published ones (each report says so next to them).
"""

from __future__ import annotations

from pathlib import Path

from kerasllm import data
from kerasllm.data.corpus import LabelledCorpus
from kerasllm.data.readers import read_labelled
from kerasllm.data.splits import stratified_split

SPLIT_SEED = 0
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1  # of what is left after the test split
SPLITS = ("train", "val", "test")
CORPORA = {
    "sst2": "SST-2 sentiment (GLUE train; test = GLUE dev)",
    "ag_news": "AG News topics (our stratified split of the official test file; not comparable to published numbers)",
    "sms_spam": "SMS Spam Collection (stratified split)",
    "sms_spam_sample": "the embedded 2,000-message SMS spam sample (no ../shared needed)",
}
CAVEATS = {
    "ag_news": "AG News: trained on 5,472 rows of the official test file (published models use 120,000 train "
    "rows); not comparable with published numbers",
}


def load_split(corpus: str, split: str, data_dir: str | None = None) -> LabelledCorpus:
    """One split of a classify corpus (see the module docstring for how each is made).

    Args:
        corpus: a name in `CORPORA`, or the path of your own labelled file (TSV/CSV with a header, JSON or JSON
            Lines; columns `text` and `label`, any label values), split stratified 72/8/20 as above.
        split: "train", "val" or "test".
        data_dir: corpus root (default `$KERASLLM_DATA` or ../shared/data); the sample needs none.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} of {corpus}: choose one of {', '.join(SPLITS)}")
    if corpus not in CORPORA:
        if not Path(corpus).is_file():
            raise ValueError(
                f"unknown corpus {corpus!r}: the classify app knows {', '.join(CORPORA)}, or the path of a "
                "labelled file (.tsv, .csv, .json or .jsonl, optionally .gz, with columns text and label)"
            )
        return _split_file(corpus, split)
    if corpus == "sst2":
        if split == "test":
            return data.load("sst2", "dev", data_dir=data_dir)
        train, val = stratified_split(data.load("sst2", "train", data_dir=data_dir), 0.05, seed=SPLIT_SEED)
        return train if split == "train" else val
    return _stratified_part(data.load(corpus, "test" if corpus == "ag_news" else "all", data_dir=data_dir), split)


def _stratified_part(whole: LabelledCorpus, split: str) -> LabelledCorpus:
    rest, test = stratified_split(whole, TEST_FRACTION, seed=SPLIT_SEED)
    if split == "test":
        return test
    train, val = stratified_split(rest, VAL_FRACTION, seed=SPLIT_SEED)
    return train if split == "train" else val


def _split_file(path: str, split: str) -> LabelledCorpus:
    """A user's labelled file, split like the corpora without a standard split; class names are its label values."""
    whole = read_labelled(path, text_field="text", label_field="label")
    part = _stratified_part(whole, split)
    if not part.texts:
        raise ValueError(
            f"{path}: its {len(whole)} records leave the {split} split empty (stratified 72/8/20 by class); "
            "give it more records of every class"
        )
    return part
