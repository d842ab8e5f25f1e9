"""The generate app's corpora as running text: tiny Shakespeare (nanoGPT's first-90% / last-10% split), the
English side of the embedded Tatoeba sample (needs no ../shared), or a UTF-8 text file of your own."""

from __future__ import annotations

from pathlib import Path

from kerasllm.data import registry
from kerasllm.data.readers import read_text

CORPORA = ("tiny_shakespeare", "tatoeba_en")
# A file of your own is split like tiny Shakespeare: its first 90% trains, the rest validates (no test split).
SPLITS = ("train", "val")


def load_text(corpus: str, split: str, data_dir: str | None = None) -> str:
    """The running text of a split: line breaks kept (a character model learns them too).

    Raises:
        ValueError: unknown split, or a split without text.
        FileNotFoundError: the corpus (or file) is missing.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if corpus == "tiny_shakespeare":
        text = registry.load("tiny_shakespeare", split, data_dir=data_dir).text
    elif corpus == "tatoeba_en":
        text = "".join(f"{line}\n" for line in registry.load("sample", split, pair="en-fr").sources)
    else:
        path = Path(corpus)
        if not path.is_file():
            raise FileNotFoundError(
                f"no corpus {corpus!r}: give one of {', '.join(CORPORA)} or the path of a UTF-8 text file"
            )
        whole = read_text(path).text
        cut = int(len(whole) * registry.LM_TRAIN_FRACTION)
        text = whole[:cut] if split == "train" else whole[cut:]
    if not text.strip():
        raise ValueError(f"{corpus} has no text in its {split} split: give a longer file")
    return text
