"""``report.md`` of a run, rebuilt from the run's files whenever one of them changes.

The report is the title, then the sections the run's family declares (``Family.report_sections``
in :mod:`dlhw.core.registry`), with the shared training section -- steps, time, memory, the loss
curve per epoch and the sample logged after each epoch -- where the family puts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlhw.core.atomic import write_text_atomic
from dlhw.core.metrics import read_metrics
from dlhw.core.registry import family_of_run
from dlhw.core.runs import RunFiles, TrainSummary, read_eval, read_train_summary, run_config_dict
from dlhw.reports.plots import loss_curves
from dlhw.reports.pruning import pruning_section


def fmt(value: Any) -> str:
    """A table cell: floats with 4 decimals, everything else as text."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_run_report(run_dir: str | Path, shown_as: str | Path | None = None) -> Path:
    """Write ``report.md`` from config.yaml, train_summary.json, metrics.jsonl and eval.json.

    ``shown_as``: the run directory the report names, where the run is written elsewhere first (a
    prune builds its run in a hidden folder and renames it into place); default ``run_dir``."""
    run_dir = Path(run_dir)
    files = RunFiles(run_dir)
    config = run_config_dict(run_dir)
    summary = read_train_summary(files)
    evaluation = read_eval(files)
    shown = run_dir if shown_as is None else Path(shown_as)
    out = [f"# {config['recipe']} ({config['preset']} preset)", "", f"Run directory: `{shown}`", ""]
    out += pruning_section(run_dir, shown)
    for section in family_of_run(run_dir).report_sections:
        if isinstance(section, str):  # TRAINING_SECTION: the shared one
            out += training_section(run_dir, summary)
        else:
            # a family's section reads its own keys besides the declared ones: it takes plain mappings
            out += section(run_dir, config, dict(summary), dict(evaluation))
    return write_text_atomic(files.report, "\n".join(out))


def training_section(run_dir: Path, summary: TrainSummary) -> list[str]:
    """Steps, time, memory and the best checkpoint; losses per epoch; the per-epoch samples."""
    out: list[str] = []
    records = read_metrics(RunFiles(run_dir).metrics)
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
    train_curve, val_points = loss_curves(records)
    if train_curve:
        out += ["| epoch | train loss (mean) |", "|---:|---:|"]
        out += [f"| {epoch} | {fmt(loss)} |" for epoch, loss in train_curve.items()]
        out.append("")
    if val_points:
        out += ["| step | epoch | validation loss |", "|---:|---:|---:|"]
        out += [f"| {p.step} | {p.epoch:.2f} | {fmt(p.loss)} |" for p in val_points]
        out.append("")
    if train_curve or val_points:
        out += ["![loss](plots/loss.png)", ""]
    samples = [(r["epoch"], k, v) for r in records for k, v in r.items() if k.startswith("sample")]
    if samples:
        out += [f"Sample after each epoch ({samples[0][1]}):", ""]
        out += [f"- epoch {e:.0f}: {v}" for e, _, v in samples]
        out.append("")
    return out
