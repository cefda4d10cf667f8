"""``dlhw report compare RUN...`` and ``dlhw report run RUN``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click


@click.group()
def report_group() -> None:
    """Reports: one run's report.md, or a comparison of several runs."""


@report_group.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder [default: runs/compare/TIMESTAMP].")
def compare_cmd(runs: tuple[str, ...], out_dir: str | None) -> None:
    """Compare RUNS: a Markdown table (time, memory, trainable parameters, losses, and the
    headline metrics of the runs' families with their change from the base model where one was
    measured), probe answers side by side when the runs have them, and PNGs (loss curves
    overlaid; bars of time, memory, trainable share and each headline metric).

    \b
    Example:
      dlhw report compare runs/RECIPE/* --out reports/methods
    """
    from dlhw.reports.compare import compare_runs

    target = Path(out_dir) if out_dir else Path("runs") / "compare" / datetime.now().strftime("%Y%m%d-%H%M%S")
    md = compare_runs([Path(r) for r in runs], target)
    click.echo(md.read_text(encoding="utf-8").split("\n## Probes")[0])
    click.echo(f"wrote {md}, {target / 'compare.json'} and {target / 'plots'}/")


@report_group.command("run")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
def run_cmd(run: str) -> None:
    """Rebuild RUN/report.md from the run's files (refused while another command writes RUN)."""
    from dlhw.core.locks import holding
    from dlhw.reports.run_report import write_run_report

    with holding(run):
        written = write_run_report(run)
    click.echo(f"wrote {written}")
