"""Regenerate the embedded samples (`kerasllm/data/sample/`) from the shared corpora.

The samples are what `kerasllm.data.load("sample")` (English-French, Tatoeba) and `load("sms_spam_sample")`
(SMS Spam Collection) serve, so the demos, tutorials and quick tests work without the shared corpora.
Regenerate them with:

    python -m kerasllm.data.make_sample ../shared/data/tatoeba-fra-eng/fra-eng.tsv.gz
    python -m kerasllm.data.make_sample --sms ../shared/data/sms_spam/SMSSpamCollection.gz

The output is byte-for-byte reproducible for a given zlib (gzip header without name or time).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
from importlib import resources
from pathlib import Path

from kerasllm.data.readers import PathLike, read_labelled, read_tsv_pairs
from kerasllm.data.splits import stratified_split

SAMPLE_FILE = "tatoeba_en_fr_4000.tsv.gz"
SAMPLE_SIZE = 4000
SAMPLE_SEED = 20240601
SMS_SAMPLE_FILE = "sms_spam_2000.tsv.gz"
SMS_SAMPLE_SIZE = 2000
SMS_ATTRIBUTION_FILE = "ATTRIBUTION-sms.md"

_ATTRIBUTION = """\
# Embedded English-French sample: attribution

`{sample_file}` holds {size} English-French sentence pairs (`English<TAB>French`, UTF-8, gzip) from the
**Tatoeba project** (https://tatoeba.org), by the Tatoeba contributors, released under the
**Creative Commons Attribution 2.0 France licence (CC BY 2.0 FR)**,
https://creativecommons.org/licenses/by/2.0/fr/ (terms: https://tatoeba.org/en/terms_of_use).
Credit: "Tatoeba (tatoeba.org) contributors, CC BY 2.0 FR". The pairs are unchanged except that
surrounding whitespace was stripped.

Source file: the shared corpus `tatoeba-fra-eng/fra-eng.tsv.gz` ({source_pairs} pairs; sha256
`{source_sha256}`), an early copy of the manythings.org `fra-eng` file
(https://www.manythings.org/anki/fra-eng.zip) taken from GitHub DevHunterYZ/Neural-Machine-Translation,
commit dd286a01f7993cd82f1c1b73e532919f8b3304a5, file fra.txt.

Selection: `random.Random({seed}).sample(range({source_pairs}), {size})` over all non-empty pairs of the
whole file (which is sorted roughly from short to long sentences, so the sample covers every length),
written in source order. Produced by:

    python -m kerasllm.data.make_sample ../shared/data/tatoeba-fra-eng/fra-eng.tsv.gz

Sample sha256: `{sample_sha256}` (gzip file), `{content_sha256}` (uncompressed TSV).
`kerasllm.data.load("sample", split)` serves a seeded 90/5/5 train/val/test split of it.
"""


_SMS_ATTRIBUTION = """\
# Embedded SMS spam sample: attribution

`{sample_file}` holds {size} of the 5,574 messages of the **SMS Spam Collection v.1** (`label<TAB>message`,
label `ham` or `spam`, UTF-8, gzip): {ham} ham and {spam} spam, the collection's own share of spam.

Copyright: Tiago Agostinho de Almeida and José María Gómez Hidalgo hold the copyright (c) for the SMS Spam
Collection v.1. Its readme ("4. LICENSE/DISCLAIMER") says it "is provided for free and with no limitations
excepting" that copyright and "No Warranty/Use At Your Risk", and asks that work using it cite:

    Almeida, T.A., Gómez Hidalgo, J.M., Yamakami, A. Contributions to the Study of SMS Spam Filtering: New
    Collection and Results. Proceedings of the 2011 ACM Symposium on Document Engineering (DocEng'11), 2011.

The UCI Machine Learning Repository lists the dataset under CC BY 4.0
(https://archive.ics.uci.edu/dataset/228/sms+spam+collection). The messages are unchanged.

Source file: the shared corpus `sms_spam/SMSSpamCollection.gz` ({source_records} messages; sha256
`{source_sha256}`), from GitHub PARKER-X/SpamClassifier, commit 5fa41eaf3ec0d21d3ffced673800d25b6b8ffc20.

Selection: `kerasllm.data.splits.stratified_split(corpus, {fraction}, seed={seed})`'s held-out part (the same
share of each class, seeded), written in source order. Produced by:

    python -m kerasllm.data.make_sample --sms ../shared/data/sms_spam/SMSSpamCollection.gz

Sample sha256: `{sample_sha256}` (gzip file).
"""


def sample_directory() -> Path:
    """The package folder that holds the sample (inside the installed package)."""
    return Path(str(resources.files("kerasllm.data") / "sample"))


def build_sample(
    source: PathLike, output_dir: PathLike | None = None, *, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED
) -> Path:
    """Write the sample TSV (gzip) and its ATTRIBUTION.md.

    Args:
        source: the Tatoeba `English<TAB>French` file (plain or .gz).
        output_dir: where to write; default the package's `sample/` folder.
        size: number of pairs to select.
        seed: seed of the selection.

    Returns:
        The path of the written sample file.
    """
    corpus = read_tsv_pairs(source, source_name="en", target_name="fr")
    if size > len(corpus):
        raise ValueError(f"{source} has {len(corpus)} pairs, fewer than the {size} requested")
    chosen = sorted(random.Random(seed).sample(range(len(corpus)), size))
    content = "".join(f"{corpus.sources[i]}\t{corpus.targets[i]}\n" for i in chosen).encode("utf-8")
    output = Path(output_dir) if output_dir is not None else sample_directory()
    output.mkdir(parents=True, exist_ok=True)
    sample_path = _write_gzip(output / SAMPLE_FILE, content)
    (output / "ATTRIBUTION.md").write_text(
        _ATTRIBUTION.format(
            sample_file=SAMPLE_FILE,
            size=size,
            seed=seed,
            source_pairs=len(corpus),
            source_sha256=hashlib.sha256(Path(source).read_bytes()).hexdigest(),
            sample_sha256=hashlib.sha256(sample_path.read_bytes()).hexdigest(),
            content_sha256=hashlib.sha256(content).hexdigest(),
        ),
        encoding="utf-8",
    )
    return sample_path


def build_sms_sample(
    source: PathLike, output_dir: PathLike | None = None, *, size: int = SMS_SAMPLE_SIZE, seed: int = SAMPLE_SEED
) -> Path:
    """Write a stratified sample of the SMS Spam Collection (gzip TSV) and its attribution.

    Args:
        source: the `SMSSpamCollection` file (`label<TAB>message`, plain or .gz).
        output_dir: where to write; default the package's `sample/` folder.
        size: number of messages (about; each class is rounded on its own).
        seed: seed of the selection.

    Returns:
        The path of the written sample file.
    """
    corpus = read_labelled(
        source, text_field=1, label_field=0, label_values=["ham", "spam"], header=False, file_format="tsv"
    )
    fraction = size / len(corpus)
    _, sample = stratified_split(corpus, fraction, seed=seed)
    content = "".join(f"{corpus.label_names[label]}\t{text}\n" for text, label in sample).encode("utf-8")
    output = Path(output_dir) if output_dir is not None else sample_directory()
    output.mkdir(parents=True, exist_ok=True)
    sample_path = _write_gzip(output / SMS_SAMPLE_FILE, content)
    (output / SMS_ATTRIBUTION_FILE).write_text(
        _SMS_ATTRIBUTION.format(
            sample_file=SMS_SAMPLE_FILE,
            size=len(sample),
            ham=sample.labels.count(0),
            spam=sample.labels.count(1),
            source_records=len(corpus),
            source_sha256=hashlib.sha256(Path(source).read_bytes()).hexdigest(),
            fraction=fraction,
            seed=seed,
            sample_sha256=hashlib.sha256(sample_path.read_bytes()).hexdigest(),
        ),
        encoding="utf-8",
    )
    return sample_path


def _write_gzip(path: Path, content: bytes) -> Path:
    # An empty file name and mtime=0 keep the gzip header free of anything machine-specific.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(content)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the Tatoeba fra-eng TSV (e.g. ../shared/data/tatoeba-fra-eng/fra-eng.tsv.gz)")
    parser.add_argument("--sms", action="store_true", help="source is the SMS Spam Collection: build the SMS sample")
    parser.add_argument("--output-dir", default=None, help="default: the package's sample/ folder")
    args = parser.parse_args(argv)
    print((build_sms_sample if args.sms else build_sample)(args.source, args.output_dir))


if __name__ == "__main__":
    main()
