"""``dlhw report compare RUN...``: one table and a few figures comparing fine-tuning runs.

Per run: wall time, peak memory (CUDA max allocated on a GPU, peak RSS on a CPU), trainable
parameters (count and share), validation loss at the start and the end and its change, final
training loss, test perplexity, exact match and their change from the base model, and each
probe's answer. Figures: loss curves overlaid, and bars of time, memory, trainable share and
exact match. Runs of any family can be compared; columns a run lacks stay empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlhw.errors import ConfigError
from dlhw.reports.plots import plt, save_figure
from dlhw.training.callbacks import read_metrics


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def run_row(run_dir: Path) -> dict[str, Any]:
    """The comparison numbers of one run (missing ones are None)."""
    summary = _json(run_dir / "train_summary.json")
    if not summary:
        raise ConfigError(f"{run_dir}: no train_summary.json; is it a finished dlhw run?")
    evaluation = _json(run_dir / "eval.json")
    records = read_metrics(run_dir / "metrics.jsonl")
    evals = [r for r in records if "eval_loss" in r]
    losses = [r["loss"] for r in records if "loss" in r]
    method = summary.get("method") or {}
    label = method.get("kind") or summary.get("recipe", run_dir.name)
    if method.get("variant") and method.get("variant") != "lora":
        label = method["variant"]
    metrics, base = evaluation.get("metrics", {}), evaluation.get("base", {})
    start = evals[0]["eval_loss"] if evals and evals[0].get("step", 1) == 0 else None
    end = evals[-1]["eval_loss"] if evals else None
    model, train = summary.get("model", {}), summary.get("train", {})
    return {
        "run": str(run_dir), "label": label, "recipe": summary.get("recipe"),
        "wall_time_s": train.get("wall_time_s"), "peak_memory_mb": train.get("peak_memory_mb"),
        "trainable_parameters": model.get("trainable_parameters"), "parameters": model.get("parameters"),
        "trainable_percent": model.get("trainable_percent"),
        "final_train_loss": losses[-1] if losses else None,
        "start_val_loss": start, "final_val_loss": end,
        "val_loss_change_percent": 100 * (end - start) / start if start and end is not None else None,
        "test_loss": metrics.get("test_loss"), "perplexity": metrics.get("perplexity"),
        "exact_match": metrics.get("exact_match"),
        "base_perplexity": base.get("perplexity"), "base_exact_match": base.get("exact_match"),
        "exact_match_change": evaluation.get("change_from_base", {}).get("exact_match"),
        "records": records,
        "probes": [json.loads(line) for line in (run_dir / "probes.jsonl").read_text(encoding="utf-8").splitlines()]
        if (run_dir / "probes.jsonl").is_file() else [],
    }


def _f(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def _unique_labels(rows: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        seen[row["label"]] = seen.get(row["label"], 0) + 1
    for row in rows:
        if seen[row["label"]] > 1:
            row["label"] = f"{row['label']} ({Path(row['run']).name})"


def plot_loss_overlay(rows: list[dict[str, Any]], path: Path) -> Path:
    fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(12, 4.4))
    for i, row in enumerate(rows):
        color = plt.cm.tab10(i % 10)
        steps = [(r["epoch"], r["loss"]) for r in row["records"] if "loss" in r and r.get("epoch") is not None]
        evals = [(r.get("epoch") or 0.0, r["eval_loss"]) for r in row["records"] if "eval_loss" in r]
        if steps:
            ax_train.plot([e for e, _ in steps], [v for _, v in steps], color=color, lw=1.2, label=row["label"])
        if evals:
            ax_val.plot([e for e, _ in evals], [v for _, v in evals], "o-", color=color, lw=1.2, label=row["label"])
    for ax, title in ((ax_train, "training loss (per log step)"), (ax_val, "validation loss (epoch 0 = before training)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    ax_val.legend(fontsize=8)
    return save_figure(fig, path)


def plot_metric_bars(rows: list[dict[str, Any]], path: Path) -> Path:
    panels = [("wall_time_s", "wall time (s)"), ("peak_memory_mb", "peak memory (MiB)"),
              ("trainable_percent", "trainable parameters (%)"), ("exact_match", "exact match")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    labels = [r["label"] for r in rows]
    for ax, (key, title) in zip(axes, panels, strict=True):
        values = [r[key] or 0.0 for r in rows]
        ax.bar(range(len(rows)), values, color=[plt.cm.tab10(i % 10) for i in range(len(rows))])
        ax.set_xticks(range(len(rows)), labels, rotation=45, ha="right")
        ax.set_title(title)
        if key == "trainable_percent":
            ax.set_yscale("log")
        if key == "exact_match":
            base = [r["base_exact_match"] for r in rows if r["base_exact_match"] is not None]
            if base:
                ax.axhline(max(base), color="black", ls="--", lw=1, label="base model")
                ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


def compare_runs(run_dirs: list[Path], out_dir: Path) -> Path:
    """Write ``compare.md``, ``compare.json`` and ``plots/`` under ``out_dir``; return the .md path."""
    if not run_dirs:
        raise ConfigError("report compare: give at least one run directory")
    rows = [run_row(Path(r)) for r in run_dirs]
    _unique_labels(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_loss_overlay(rows, out_dir / "plots" / "loss_overlay.png")
    plot_metric_bars(rows, out_dir / "plots" / "metrics.png")
    lines = [
        "# Comparison of runs", "",
        "| method | wall time (s) | peak memory (MiB) | trainable params | trainable % | final train loss | "
        "val loss start → end | val loss change | test perplexity | exact match | change from base |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {_f(r['wall_time_s'], '.1f')} | {_f(r['peak_memory_mb'], '.0f')} | "
            f"{_f(r['trainable_parameters'], ',')} | {_f(r['trainable_percent'], '.3f')} | "
            f"{_f(r['final_train_loss'], '.4f')} | {_f(r['start_val_loss'], '.3f')} → {_f(r['final_val_loss'], '.3f')} | "
            f"{_f(r['val_loss_change_percent'], '+.1f')}% | {_f(r['perplexity'], '.2f')} | "
            f"{_f(r['exact_match'], '.3f')} | {_f(r['exact_match_change'], '+.3f')} |"
        )
    base_em = next((r["base_exact_match"] for r in rows if r["base_exact_match"] is not None), None)
    base_ppl = next((r["base_perplexity"] for r in rows if r["base_perplexity"] is not None), None)
    if base_em is not None:
        lines += ["", f"Base model (no fine-tuning): exact match {base_em:.3f}, test perplexity {_f(base_ppl, '.2f')}."]
    lines += ["", "Peak memory is CUDA max allocated on a GPU and the process's peak RSS on a CPU.", "",
              "![loss curves](plots/loss_overlay.png)", "", "![metrics](plots/metrics.png)", ""]
    prompts = [p["prompt"] for p in rows[0]["probes"]]
    if prompts:
        lines += ["## Probes (greedy)", ""]
        for k, prompt in enumerate(prompts):
            lines += [f"**{_cell(prompt)}**", "", "| model | answer |", "|---|---|"]
            lines.append(f"| base model | {_cell(rows[0]['probes'][k].get('base'))} |")
            lines += [f"| {r['label']} | {_cell(r['probes'][k]['fine_tuned'] if k < len(r['probes']) else '')} |"
                      for r in rows]
            lines.append("")
    md = out_dir / "compare.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    table = [{k: v for k, v in r.items() if k != "records"} for r in rows]
    (out_dir / "compare.json").write_text(json.dumps(table, indent=2, ensure_ascii=False), encoding="utf-8")
    return md
