"""The comparison report: results.json, report.md and matplotlib figures, from `runner.collect_results`.

The "where each model wins and loses" section is computed from the measured numbers, metric by metric,
so the text cannot drift from the tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (key, label, higher is better, format, getter) — one row per compared quantity.
Metric = tuple[str, str, bool, str, Callable[[dict], float]]
METRICS: list[Metric] = [
    ("test_bleu", "test BLEU", True, "{:.2f}", lambda m: m["test"]["bleu"]),
    ("test_chrf", "test chrF", True, "{:.2f}", lambda m: m["test"]["chrf"]),
    ("val_bleu", "val BLEU", True, "{:.2f}", lambda m: m["val"]["bleu"]),
    ("best_val_loss", "best val loss", False, "{:.3f}", lambda m: m["best_val_loss"]),
    ("training_tokens_per_second", "training tokens/s", True, "{:,.0f}", lambda m: m["training_tokens_per_second"]),
    (
        "decode_batch_1",
        "greedy decoding tokens/s, batch 1",
        True,
        "{:,.0f}",
        lambda m: m["decode_tokens_per_second"]["batch_1"],
    ),
    (
        "decode_batch_32",
        "greedy decoding tokens/s, batch 32",
        True,
        "{:,.0f}",
        lambda m: m["decode_tokens_per_second"]["batch_32"],
    ),
    ("parameters", "parameters", False, "{:,}", lambda m: m["parameters"]),
    ("training_peak_rss_mb", "training peak RSS (MiB)", False, "{:,.0f}", lambda m: m["training_peak_rss_mb"]),
]


def describe_decoding(decoding: dict[str, Any]) -> str:
    """ "beam search (beam 4, α 0.6), at most 128 positions" from a decoding config."""
    if decoding.get("search", "beam") == "beam":
        text = f"beam search (beam {decoding.get('beam_size', 4)}, α {decoding.get('alpha', 0.6)})"
    else:
        text = "greedy search"
    return text + (f", at most {decoding['max_length']} positions" if "max_length" in decoding else "")


def findings(results: dict[str, Any]) -> list[str]:
    """One line per metric and per length bucket: who is best, who is worst, by how much."""
    models = results["models"]
    lines = []
    for _, label, higher, fmt, get in METRICS:
        ranked = sorted(models, key=lambda name: get(models[name]), reverse=higher)
        best, worst = ranked[0], ranked[-1]
        values = ", ".join(f"{models[name]['label']} {fmt.format(get(models[name]))}" for name in ranked)
        low, high = sorted((get(models[best]), get(models[worst])))
        spread = f"; {high / low:.2f}× apart" if low > 0 else ""
        lines.append(f"**{label}**: {models[best]['label']} wins, {models[worst]['label']} loses ({values}{spread}).")
    buckets = next(iter(models.values()))["bleu_by_source_length"]
    for bucket, info in buckets.items():
        scored = [name for name in models if models[name]["bleu_by_source_length"][bucket]["bleu"] is not None]
        if not scored:
            continue
        ranked = sorted(scored, key=lambda name: models[name]["bleu_by_source_length"][bucket]["bleu"], reverse=True)
        values = ", ".join(
            f"{models[name]['label']} {models[name]['bleu_by_source_length'][bucket]['bleu']:.1f}" for name in ranked
        )
        lines.append(
            f"**test BLEU, sources of {bucket} words** ({info['segments']} segments): "
            f"{models[ranked[0]]['label']} wins, {models[ranked[-1]]['label']} loses ({values})."
        )
    target = max(m["best_val_loss"] for m in models.values())
    reached = {
        name: next((row["elapsed_seconds"] for row in m["history"] if row["val_loss"] <= target), None)
        for name, m in models.items()
    }
    lines.append(
        "**training time to reach val loss {:.3f}** (the worst model's best): {}.".format(
            target,
            ", ".join(
                f"{models[name]['label']} {seconds / 60:.1f} min"
                for name, seconds in sorted(reached.items(), key=lambda item: item[1])
            ),
        )
    )
    return lines


def _plot_training(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, (loss_axis, bleu_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for model in results["models"].values():
        minutes = [row["elapsed_seconds"] / 60 for row in model["history"]]
        (line,) = loss_axis.plot(
            minutes, [row["val_loss"] for row in model["history"]], marker=".", label=model["label"]
        )
        loss_axis.plot(
            model["best_elapsed_seconds"] / 60,
            model["best_val_loss"],
            "o",
            color=line.get_color(),
            markersize=9,
            markerfacecolor="none",
        )
        for split, marker in (("val", "s"), ("test", "^")):
            bleu_axis.plot(
                model["best_elapsed_seconds"] / 60,
                model[split]["bleu"],
                marker,
                color=line.get_color(),
                markersize=8,
                label=f"{model['label']} ({'val' if split == 'val' else results['test_split']})",
            )
    loss_axis.set(
        xlabel="training time (minutes)",
        ylabel="validation loss (label-smoothed)",
        title="Validation loss vs training time (circle: best checkpoint)",
    )
    bleu_axis.set(
        xlabel="training time of the best checkpoint (minutes)",
        ylabel="sacreBLEU (beam search)",
        title="BLEU of the best checkpoint vs its training time",
    )
    loss_axis.grid(alpha=0.3)
    bleu_axis.grid(alpha=0.3)
    loss_axis.legend()
    bleu_axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_costs(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    models = results["models"]
    panels = [
        metric
        for metric in METRICS
        if metric[0]
        in ("training_tokens_per_second", "decode_batch_1", "decode_batch_32", "parameters", "training_peak_rss_mb")
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    labels = [model["label"].replace(" + ", "\n+ ") for model in models.values()]
    for axis, (_, label, higher, _, get) in zip(axes, panels):
        values = [get(model) for model in models.values()]
        bars = axis.bar(labels, values, color=[f"C{i}" for i in range(len(values))])
        axis.bar_label(bars, labels=[f"{v:,.0f}" if v >= 10 else f"{v:.2f}" for v in values], fontsize=8)
        axis.set_title(f"{label}\n({'higher' if higher else 'lower'} is better)", fontsize=9)
        axis.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_buckets(results: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    models = results["models"]
    buckets = list(next(iter(models.values()))["bleu_by_source_length"])
    width = 0.8 / len(models)
    figure, axis = plt.subplots(figsize=(8, 4))
    for index, model in enumerate(models.values()):
        values = [model["bleu_by_source_length"][b]["bleu"] or 0.0 for b in buckets]
        axis.bar(
            [i + (index - (len(models) - 1) / 2) * width for i in range(len(buckets))],
            values,
            width,
            label=model["label"],
        )
    counts = next(iter(models.values()))["bleu_by_source_length"]
    axis.set_xticks(range(len(buckets)), [f"{b} words\n({counts[b]['segments']} sentences)" for b in buckets])
    axis.set(ylabel="sacreBLEU", title=f"{results['test_split']} BLEU by source length")
    axis.legend()
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _markdown(results: dict[str, Any]) -> str:
    models = results["models"]
    names = list(models)
    test = results["test_split"]
    vocabulary = results["vocabulary"]
    lines = [
        f"# LSTM vs Transformer: {results['corpus']} {results['pair']}",
        "",
        "```",
        results["command"],
        "```",
        "",
        f"Generated {results['created']} on {results['machine']['platform']}, {results['machine']['cpus']} CPUs "
        f"(TensorFlow {results['machine']['tensorflow']}, Keras {results['machine']['keras']}).",
        "",
        f"Same for every model: the {results['corpus']} {results['pair']} training split and pipeline, one pair of "
        f"WordPiece vocabularies ({vocabulary['source_size']:,} source / {vocabulary['target_size']:,} target "
        f"entries, sha256 {vocabulary['source_sha256'][:12]}… / {vocabulary['target_sha256'][:12]}…), a training "
        f"budget of {results['budget_minutes']:g} minutes of wall-clock time (validation passes included), the best "
        f"checkpoint by validation loss, and the same decoding ({describe_decoding(results['decoding'])}).",
        "",
        "## Results",
        "",
        "| | " + " | ".join(models[n]["label"] for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    rows = [
        ("preset", lambda m: f"`{m['preset']}`"),
        ("parameters", lambda m: f"{m['parameters']:,}"),
        ("epochs / training time", lambda m: f"{m['epochs']} / {m['training_seconds'] / 60:.1f} min"),
        ("best epoch (at)", lambda m: f"{m['best_epoch']} ({m['best_elapsed_seconds'] / 60:.1f} min)"),
        ("best val loss", lambda m: f"{m['best_val_loss']:.3f}"),
        ("val BLEU / chrF", lambda m: f"{m['val']['bleu']:.2f} / {m['val']['chrf']:.2f}"),
        (f"**{test} BLEU** / chrF", lambda m: f"**{m['test']['bleu']:.2f}** / {m['test']['chrf']:.2f}"),
        ("training tokens/s (probe)", lambda m: f"{m['training_tokens_per_second']:,.0f}"),
        ("training tokens/s (whole run)", lambda m: f"{m['run_tokens_per_second']:,.0f}"),
        ("greedy decoding tokens/s, batch 1", lambda m: f"{m['decode_tokens_per_second']['batch_1']:,.0f}"),
        ("greedy decoding tokens/s, batch 32", lambda m: f"{m['decode_tokens_per_second']['batch_32']:,.0f}"),
        ("training peak RSS", lambda m: f"{m['training_peak_rss_mb']:,.0f} MiB"),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(models[n]) for n in names) + " |")
    first = models[names[0]]
    lines += [f"\n{models[n]['label']}: {models[n]['run_note']}." for n in names if models[n].get("run_note")]
    lines += [
        "",
        f"sacreBLEU signatures: BLEU `{first['test']['bleu_signature']}`, chrF `{first['test']['chrf_signature']}`.",
        "",
        "How it was measured: BLEU/chrF are corpus scores of detokenized beam-search output on the whole split. "
        "*Training tokens/s (probe)* counts real (non-padding) target tokens per second of `train_on_batch` on the "
        "run's first 8 batches, each run once untimed first, in a fresh process per model; *(whole run)* is an "
        "epoch's target tokens × epochs ÷ the run's training time. Decoding tokens/s is greedy XLA-compiled cached "
        f"decoding of the first 32 (batch 1) and 256 (batch 32) {test} sentences after a warm-up pass, counting "
        "generated subword tokens, END included. Peak RSS is that of the probe process after its training steps.",
        "",
        "![validation loss and BLEU vs training time](training.png)",
        "",
        "## Where each model wins and where it loses",
        "",
        *[f"- {line}" for line in findings(results)],
        "",
        "![speed, size and memory](costs.png)",
        "",
        f"## {test} BLEU by source length",
        "",
        "| source words | sentences | " + " | ".join(models[n]["label"] for n in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for bucket, info in first["bleu_by_source_length"].items():
        cells = [models[n]["bleu_by_source_length"][bucket]["bleu"] for n in names]
        lines.append(
            f"| {bucket} | {info['segments']} | " + " | ".join("–" if v is None else f"{v:.2f}" for v in cells) + " |"
        )
    lines += ["", "![BLEU by source length](bleu_by_length.png)", "", "## Example translations", ""]
    for example in results["examples"]:
        lines += [
            f"- **source** ({len(example['source'].split())} words): {example['source']}",
            f"  - reference: {example['reference']}",
        ]
        lines += [f"  - {models[n]['label']}: {example['translations'][n]}" for n in names]
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], report_dir: str | Path) -> Path:
    """Write results.json, report.md, training.png, costs.png and bleu_by_length.png into `report_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    _plot_training(results, report_dir / "training.png")
    _plot_costs(results, report_dir / "costs.png")
    _plot_buckets(results, report_dir / "bleu_by_length.png")
    (report_dir / "report.md").write_text(_markdown(results), encoding="utf-8")
    return report_dir / "report.md"
