"""Regenerate the embedded English-French sample (`kerasllm/data/sample/`) from the shared Tatoeba file.

The sample is what `kerasllm.data.load("sample")` serves, so the demo, tutorials and quick tests work
without the shared corpora. Regenerate it with:

    python -m kerasllm.data.make_sample ../shared/data/tatoeba-fra-eng/fra-eng.tsv.gz

The output is byte-for-byte reproducible for a given zlib (gzip header without name or time).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
from importlib import resources
from pathlib import Path

from kerasllm.data.readers import PathLike, read_tsv_pairs

SAMPLE_FILE = "tatoeba_en_fr_4000.tsv.gz"
SAMPLE_SIZE = 4000
SAMPLE_SEED = 20240601

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
    sample_path = output / SAMPLE_FILE
    # An empty file name and mtime=0 keep the gzip header free of anything machine-specific.
    with (
        open(sample_path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(content)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the Tatoeba fra-eng TSV (e.g. ../shared/data/tatoeba-fra-eng/fra-eng.tsv.gz)")
    parser.add_argument("--output-dir", default=None, help="default: the package's sample/ folder")
    args = parser.parse_args(argv)
    print(build_sample(args.source, args.output_dir))


if __name__ == "__main__":
    main()
