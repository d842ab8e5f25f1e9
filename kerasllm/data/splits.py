"""Seeded, stratified hold-out splits for labelled corpora that come without a standard split.

A stratified split keeps each class's share in both parts, which matters on small, skewed corpora: SMS spam is
13% spam, so a plain random 20% can hold noticeably more or fewer spam messages than the corpus. The same
seed gives the same split on every machine; records keep their file order within a part.
"""

from __future__ import annotations

import dataclasses
import random

from kerasllm.data.corpus import LabelledCorpus


def stratified_split(
    corpus: LabelledCorpus, fraction: float, *, seed: int = 0
) -> tuple[LabelledCorpus, LabelledCorpus]:
    """Split `corpus` into `(rest, held_out)`, holding out `round(fraction * n_c)` records of every class c.

    Args:
        corpus: a labelled corpus.
        fraction: the share held out, strictly between 0 and 1.
        seed: the shuffle seed (each class is shuffled with its own `random.Random(f"{seed}-{class}")`).

    Returns:
        `(rest, held_out)`, two LabelledCorpus with the same label names, their report sources saying which part
        of how many records they are.

    Example:
        >>> from kerasllm.data import load  # doctest: +SKIP
        >>> train, test = stratified_split(load("ag_news", "test"), 0.2)  # doctest: +SKIP
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(corpus.labels):
        by_class.setdefault(label, []).append(index)
    held_out: set[int] = set()
    for label, indices in sorted(by_class.items()):
        order = list(indices)
        random.Random(f"{seed}-{label}").shuffle(order)
        held_out.update(order[: round(len(order) * fraction)])
    parts = (
        [i for i in range(len(corpus)) if i not in held_out],
        [i for i in range(len(corpus)) if i in held_out],
    )
    return tuple(_subset(corpus, keep, name) for keep, name in zip(parts, ("rest", "held out")))


def _subset(corpus: LabelledCorpus, keep: list[int], name: str) -> LabelledCorpus:
    report = dataclasses.replace(corpus.report, source=f"{corpus.report.source} [{name}: {len(keep)} of {len(corpus)}]")
    return LabelledCorpus([corpus.texts[i] for i in keep], [corpus.labels[i] for i in keep], corpus.label_names, report)
