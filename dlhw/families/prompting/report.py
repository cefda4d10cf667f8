"""The prompting family's report sections and figures.

- :func:`plot_labels` -- bars of the predicted labels (yes / no / unknown) of one strategy, with the
  targets' counts as a reference line (the course's "bar plot of the predicted labels");
- :func:`plot_accuracy` -- accuracy per strategy with its 95% interval and the unknown share;
- :func:`data_section`, :func:`model_section`, :func:`evaluation_section` -- report.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.core.runs import read_json
from dlhw.families.prompting.evaluate import SHOTS_FILE
from dlhw.reports.plots import plt, save_figure

LABEL_COLORS = {"yes": "tab:green", "no": "tab:red", "unknown": "tab:gray"}


def plot_labels(predicted: dict[str, int], path: Path, strategy: str,
                targets: dict[str, int] | None = None) -> Path:
    """Predicted-label counts of one strategy (bars), the targets' counts as dashes."""
    labels = list(predicted)
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    bars = ax.bar(labels, [predicted[k] for k in labels], color=[LABEL_COLORS.get(k, "tab:blue") for k in labels])
    ax.bar_label(bars)
    if targets:
        for i, label in enumerate(labels):
            if label in targets:
                ax.hlines(targets[label], i - 0.4, i + 0.4, colors="black", linestyles="--", lw=1)
    ax.set_title(f"predicted labels: {strategy}")
    ax.set_ylabel("items")
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


def plot_accuracy(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """Accuracy per strategy with 95% interval error bars; the unknown share stacked in gray."""
    names = list(results)
    acc = [results[s]["accuracy"] for s in names]
    err = [[a - results[s]["ci_low"] for s, a in zip(names, acc, strict=True)],
           [results[s]["ci_high"] - a for s, a in zip(names, acc, strict=True)]]
    unknown = [results[s]["unknown_rate"] for s in names]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(names) + 2), 4.0))
    ax.bar(names, acc, yerr=err, capsize=4, color="tab:blue", label="accuracy (95% interval)")
    ax.bar(names, unknown, bottom=acc, color="tab:gray", alpha=0.5, label="unknown answers")
    ax.axhline(0.5, color="black", ls=":", lw=1, label="chance")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of items")
    ax.set_title("accuracy by prompting strategy")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


def data_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    data = summary.get("data")
    if not data:
        return []
    out = ["## Data", "",
           f"- test: {data['test_items']} items from {data['source']}",
           f"- few-shot pool: {data['pool_items']} items from {data['pool']}; **{data['removed_from_pool']} pool items "
           "were test items and were removed** (normalized statement match)"]
    if data.get("removed_examples"):
        out.append("  - e.g. " + "; ".join(f"“{t}”" for t in data["removed_examples"][:3]))
    shots = read_json(run_dir / SHOTS_FILE)
    if shots.get("shots"):
        out += [f"- {len(shots['shots'])} shots drawn with seed {shots['seed']} (fixed for every item; `shots.json`):"]
        out += [f"  - {s['input']} → {s['target']}" for s in shots["shots"]]
    out += [f"- CoT exemplars: {data['cot_exemplars']} with rationales (cot-prompts format), in `shots.json`", ""]
    return out


def model_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    model = summary.get("model")
    if not model:
        return []
    size = f", {model['parameters']:,} parameters" if model.get("parameters") else ""
    p = config["prompting"]
    return ["## Model", "",
            f"- `{model['base']}` ({model.get('kind', 'seq2seq')}{size}) on {model['backend']}; nothing is trained",
            f"- answer-only / few-shot: {p['scoring']} (≤ {p['answer_tokens']} new tokens); CoT: greedy, "
            f"≤ {p['cot_tokens']} new tokens; self-consistency: {p['samples']} chains, temperature "
            f"{p['temperature']}, top-p {p['top_p']}, seed {config['seed']}",
            f"- wall time {summary.get('prompting', {}).get('wall_time_s', 0):.1f} s", ""]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def evaluation_section(run_dir: Path, config: dict[str, Any], summary: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    if not evaluation:
        return []
    results = evaluation["strategies"]
    out = ["## Accuracy by strategy", "",
           "| strategy | accuracy | 95% interval | unknown | predicted yes / no / unknown | ties | time (s) |",
           "|---|---:|---|---:|---|---:|---:|"]
    for name, r in results.items():
        pred = r["predicted"]
        out.append(f"| {name} | {r['accuracy']:.3f} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | "
                   f"{r['unknown_rate']:.3f} | {pred['yes']} / {pred['no']} / {pred['unknown']} | "
                   f"{r.get('ties', '')} | {r.get('seconds', '')} |")
    best = evaluation["metrics"]["best_strategy"]
    out += ["", f"Best: **{best}** ({results[best]['accuracy']:.3f}). Unknown answers count as wrong. "
            "Self-consistency ties go to the tied label sampled first.", "",
            "![accuracy](plots/accuracy.png)", ""]
    out += [f"![{name}](plots/labels_{name}.png)" for name in results]
    out += ["", "Predictions: " + ", ".join(f"`predictions/{name}.csv`" for name in results), ""]
    return out
