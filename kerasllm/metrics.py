"""Corpus-level translation quality with sacreBLEU (detokenized, cased, signature reported)."""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu


def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
    """sacreBLEU corpus BLEU and chrF of detokenized hypotheses against one reference each.

    sacreBLEU rather than our own BLEU: its default 13a tokenization and signature are what makes a
    number comparable with published ones (keras-hub's `Bleu` metric mimics it but runs eagerly only).

    Args:
        hypotheses: system outputs, one detokenized string per segment.
        references: the reference translation of each segment, same order.

    Returns:
        dict with `bleu`, `chrf` and their sacreBLEU signatures `bleu_signature`, `chrf_signature`.

    Example:
    >>> round(translation_scores(["a dog runs ."], ["a dog runs ."])["bleu"], 1)
    100.0
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references: they must align one to one")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    hypotheses, references = list(hypotheses), [list(references)]
    return {
        "bleu": bleu.corpus_score(hypotheses, references).score,
        "chrf": chrf.corpus_score(hypotheses, references).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
