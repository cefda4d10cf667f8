"""``dlhw report compare RUN...``: one table and a few figures comparing runs of any family.

Every run: wall time, peak memory (CUDA max allocated on a GPU, peak RSS on a CPU), trainable
parameters (count and share), validation loss at the start and the end and its change, final
training loss. Then the headline metrics its family declares (``Family.metrics`` in
:mod:`dlhw.core.registry`) where eval.json has them, with their change from the base model where
the run measured one; the keys read are declared in :mod:`dlhw.core.runs` (:class:`TrainSummary`,
:class:`Evaluation`). Figures: loss curves overlaid, and bars of time, memory, trainable share and
each headline metric present. Probe answers (``probes.jsonl``) are shown side by side when the runs
have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.core.atomic import write_json_atomic, write_text_atomic
from dlhw.core.metrics import read_jsonl, read_metrics
from dlhw.core.registry import family_of_run
from dlhw.core.runs import (
    ModelNumbers,
    RunFiles,
    TrainNumbers,
    model_file_sizes,
    read_eval,
    read_json,
    read_train_summary,
)
from dlhw.errors import ConfigError
from dlhw.reports.plots import plt, save_figure


def run_row(run_dir: Path) -> dict[str, Any]:
    """The comparison numbers of one run (missing ones are None)."""
    files = RunFiles(run_dir)
    summary = read_train_summary(files)
    evaluation = read_eval(files)
    if not summary and not evaluation:
        raise ConfigError(f"{run_dir}: neither {files.train_summary.name} nor {files.eval.name}; "
                          "is it a finished dlhw run?")
    sparsity = read_json(files.sparsity)
    records = read_metrics(files.metrics)
    evals = [r for r in records if "eval_loss" in r]
    losses = [r["loss"] for r in records if "loss" in r]
    start = evals[0]["eval_loss"] if evals and evals[0].get("step", 1) == 0 else None
    end = evals[-1]["eval_loss"] if evals else None
    model, train = summary.get("model", ModelNumbers()), summary.get("train", TrainNumbers())
    metrics = evaluation.get("metrics", {})
    label = summary.get("label") or summary.get("recipe") or run_dir.name
    if sparsity and not sparsity.get("init_from"):
        # a pruned copy: its training numbers are its parent's, so they are left out
        how = "2:4" if sparsity["pattern"] == "2:4" else f"{sparsity['scope']} {sparsity['amount']:.0%}"
        label = f"{label}, pruned {sparsity['method']} {how}"
        model, train, records, losses, start, end = ModelNumbers(), TrainNumbers(), [], [], None, None
    elif sparsity:
        label = f"{label}, re-fine-tuned from pruned"
    return {
        "run": str(run_dir), "label": label,
        "recipe": summary.get("recipe"), "family": family_of_run(run_dir).name,
        "wall_time_s": train.get("wall_time_s"), "peak_memory_mb": train.get("peak_memory_mb"),
        "trainable_parameters": model.get("trainable_parameters"), "parameters": model.get("parameters"),
        "trainable_percent": model.get("trainable_percent"),
        "final_train_loss": losses[-1] if losses else None,
        "start_val_loss": start, "final_val_loss": end,
        "val_loss_change_percent": 100 * (end - start) / start if start and end is not None else None,
        "metrics": metrics, "base": evaluation.get("base", {}),
        "change_from_base": evaluation.get("change_from_base", {}),
        "records": records,
        "probes": read_jsonl(files.probes),
        "sparsity": sparsity.get("pruned_modules", {}).get("sparsity"),
        "size": ({"pruned": model_file_sizes(run_dir), **({"dense": model_file_sizes(Path(sparsity["parent"]))}
                                                            if not sparsity.get("init_from") and Path(sparsity.get("parent", "")).is_dir() else {})}
                 if sparsity else {}),
        "init_from": sparsity.get("init_from"),
    }


def metric_columns(rows: list[dict[str, Any]], run_dirs: list[Path]) -> list[tuple[str, str]]:
    """The headline metrics the runs' families declare, in order, where some run has them."""
    columns: dict[str, str] = {}
    for run_dir in run_dirs:
        for key, label in family_of_run(run_dir).metrics:
            if any(key in r["metrics"] for r in rows):
                columns.setdefault(key, label)
    return list(columns.items())


def _f(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 100 else f"{value:.4f}"
    return "" if value is None else str(value)


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


def plot_metric_bars(rows: list[dict[str, Any]], columns: list[tuple[str, str]], path: Path) -> Path:
    """Bars of time, memory, trainable share, and each headline metric (base model as a line)."""
    panels: list[tuple[str, str, bool]] = [("wall_time_s", "wall time (s)", False),
                                           ("peak_memory_mb", "peak memory (MiB)", False),
                                           ("trainable_percent", "trainable parameters (%)", False)]
    panels += [(key, label, True) for key, label in columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    labels = [r["label"] for r in rows]
    for ax, (key, title, is_metric) in zip(axes[0], panels, strict=True):
        values = [(r["metrics"].get(key) if is_metric else r[key]) or 0.0 for r in rows]
        ax.bar(range(len(rows)), values, color=[plt.cm.tab10(i % 10) for i in range(len(rows))])
        ax.set_xticks(range(len(rows)), labels, rotation=45, ha="right")
        ax.set_title(title)
        if key == "trainable_percent":
            ax.set_yscale("log")
        base = {r["base"][key] for r in rows if is_metric and key in r["base"]}
        if len(base) == 1:  # one base for every run (runs on other bases show their change in the table)
            ax.axhline(base.pop(), color="black", ls="--", lw=1, label="base model")
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


def sparsity_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Sparsity and model-file sizes, dense vs pruned, raw and gzip-compressed (pruned runs only)."""
    pruned = [r for r in rows if r["sparsity"] is not None]
    if not pruned:
        return []
    lines = ["## Sparsity and size", "", "| run | sparsity of pruned layers | model files (raw) | gzip | "
             "dense model files (raw) | dense gzip |", "|---|---:|---:|---:|---:|---:|"]
    for r in pruned:
        size, dense = r["size"].get("pruned", {}), r["size"].get("dense", {})
        mib = [f"{v / 2**20:.3f} MiB" if v is not None else "" for v in
               (size.get("raw_bytes"), size.get("gzip_bytes"), dense.get("raw_bytes"), dense.get("gzip_bytes"))]
        lines.append(f"| {r['label']} | {100 * r['sparsity']:.1f}% | " + " | ".join(mib) + " |")
    lines += ["", "Unstructured zeros shrink the compressed file, not the raw one, and give no speed-up with "
              "dense kernels; 2:4 patterns can use sparse tensor cores on a GPU.", ""]
    return lines


def _val_loss_span(row: dict[str, Any]) -> str:
    start, end = row["start_val_loss"], row["final_val_loss"]
    return "" if start is None and end is None else f"{_f(start, '.3f')} → {_f(end, '.3f')}"


def compare_runs(run_dirs: list[Path], out_dir: Path) -> Path:
    """Write ``compare.md``, ``compare.json`` and ``plots/`` under ``out_dir``; return the .md path."""
    if not run_dirs:
        raise ConfigError("report compare: give at least one run directory")
    run_dirs = [Path(r) for r in run_dirs]
    rows = [run_row(r) for r in run_dirs]
    _unique_labels(rows)
    columns = metric_columns(rows, run_dirs)
    changes = [(k, label) for k, label in columns if any(k in r["change_from_base"] for r in rows)]
    out_dir.mkdir(parents=True, exist_ok=True)
    out = RunFiles(out_dir)  # a comparison keeps its figures where a run keeps its own
    plot_loss_overlay(rows, out.plot("loss_overlay.png"))
    plot_metric_bars(rows, columns, out.plot("metrics.png"))
    header = ["method", "wall time (s)", "peak memory (MiB)", "trainable params", "trainable %", "final train loss",
              "val loss start → end", "val loss change", *[label for _, label in columns],
              *[f"{label}: change from base" for _, label in changes]]
    lines = ["# Comparison of runs", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        cells = [
            r["label"], _f(r["wall_time_s"], ".1f"), _f(r["peak_memory_mb"], ".0f"),
            _f(r["trainable_parameters"], ","), _f(r["trainable_percent"], ".3f"), _f(r["final_train_loss"], ".4f"),
            _val_loss_span(r),
            f"{_f(r['val_loss_change_percent'], '+.1f')}%" if r["val_loss_change_percent"] is not None else "",
            *[_number(r["metrics"].get(k)) for k, _ in columns],
            *[_f(r["change_from_base"].get(k), "+.3f") for k, _ in changes],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    bases = [(r["label"], r["base"]) for r in rows if r["base"]]
    several = len({str(b) for _, b in bases}) > 1  # runs on different bases: name each run's own
    for label, base in bases if several else bases[:1]:
        described = ", ".join(f"{name} {_number(base[k])}" for k, name in columns if k in base)
        lines += ["", f"Base model{f' of {label}' if several else ''} (no fine-tuning): {described}."]
    lines += ["", "Peak memory is CUDA max allocated on a GPU and the process's peak RSS on a CPU.", "",
              "![loss curves](plots/loss_overlay.png)", "", "![metrics](plots/metrics.png)", ""]
    lines += sparsity_lines(rows)
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
    write_text_atomic(md, "\n".join(lines))
    table = [{k: v for k, v in r.items() if k != "records"} for r in rows]
    write_json_atomic(out_dir / "compare.json", table)
    return md
