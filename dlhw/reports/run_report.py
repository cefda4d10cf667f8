"""``report.md`` of a run, rebuilt from the run's files whenever one of them changes.

The report is the title, then the sections the run's family declares (``Family.report_sections``
in :mod:`dlhw.core.registry`), with the shared training section -- steps, time, memory, the loss
curve per epoch and the sample logged after each epoch -- where the family puts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dlhw.core.imports import import_string
from dlhw.core.metrics import read_metrics
from dlhw.core.registry import TRAINING_SECTION, family_of_run
from dlhw.core.runs import read_json
from dlhw.reports.plots import loss_curves
from dlhw.reports.pruning import pruning_section


def fmt(value: Any) -> str:
    """A table cell: floats with 4 decimals, everything else as text."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``report.md`` from config.yaml, train_summary.json, metrics.jsonl and eval.json."""
    run_dir = Path(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    summary = read_json(run_dir / "train_summary.json")
    evaluation = read_json(run_dir / "eval.json")
    out = [f"# {config['recipe']} ({config['preset']} preset)", "", f"Run directory: `{run_dir}`", ""]
    out += pruning_section(run_dir)
    for section in family_of_run(run_dir).report_sections:
        if section == TRAINING_SECTION:
            out += training_section(run_dir, summary)
        else:
            out += import_string(section)(run_dir, config, summary, evaluation)
    path = run_dir / "report.md"
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def training_section(run_dir: Path, summary: dict[str, Any]) -> list[str]:
    """Steps, time, memory and the best checkpoint; losses per epoch; the per-epoch samples."""
    out: list[str] = []
    records = read_metrics(run_dir / "metrics.jsonl")
    train = summary.get("train")
    if train:
        best = train.get("best_metric_name", "validation loss")
        out += [
            "## Training",
            "",
            f"- {train['global_step']} steps, {train['epochs']:.2f} epochs, {train['wall_time_s']:.1f} s; "
            f"peak memory {train['peak_memory_mb']:.0f} MiB"
            + ("; stopped early" if train["stopped_early"] else ""),
            f"- best {best} {fmt(train.get('best_metric', train.get('best_eval_loss')))} ({train['best_checkpoint']})",
            "",
        ]
    train_curve, val_curve = loss_curves(records)
    if train_curve or val_curve:
        out += ["| epoch | train loss | validation loss |", "|---:|---:|---:|"]
        for epoch in sorted(set(train_curve) | set(val_curve)):
            out.append(f"| {epoch} | {fmt(train_curve.get(epoch, ''))} | {fmt(val_curve.get(epoch, ''))} |")
        out += ["", "![loss](plots/loss.png)", ""]
    samples = [(r["epoch"], k, v) for r in records for k, v in r.items() if k.startswith("sample")]
    if samples:
        out += [f"Sample after each epoch ({samples[0][1]}):", ""]
        out += [f"- epoch {e:.0f}: {v}" for e, _, v in samples]
        out.append("")
    return out
