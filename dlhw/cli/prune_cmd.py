"""``dlhw prune RUN``: prune any run's Linear layers into a new run directory."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(exists=True, file_okay=False))
@click.option("--amount", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.3, show_default=True,
              help="Share of the weights set to zero (ignored by --pattern 2:4, which prunes 50%).")
@click.option("--scope", type=click.Choice(["layer", "global"]), default="layer", show_default=True,
              help="layer: AMOUNT of every module; global: AMOUNT of all of them together (layers differ).")
@click.option("--method", type=click.Choice(["l1", "wanda"]), default="l1", show_default=True,
              help="l1: smallest |W|; wanda: smallest |W| x input activation norm, calibrated on a few "
                   "training batches of the run's data.")
@click.option("--pattern", type=click.Choice(["unstructured", "2:4"]), default="unstructured", show_default=True,
              help="2:4: two of every four consecutive weights (semi-structured, GPU sparse kernels).")
@click.option("--include", default="", metavar="PARTS",
              help="Also prune these, comma-separated: lm_head, embeddings (excluded by default).")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="The pruned run [default: RUN-pruned-METHOD-SCOPE-AMOUNT beside RUN].")
def prune_cmd(run_dir: str, amount: float, scope: str, method: str, pattern: str, include: str,
              output_dir: str | None) -> None:
    """Prune the Linear layers of the model of RUN (any family) into a new run directory.

    The new run appears only complete: it is written into a hidden folder beside it and renamed into
    place at the end, so a stopped prune leaves no run there and the same command can simply be run
    again. While another command writes the new run, it is refused (exit code 2).

    The new run holds the pruned model as plain weights with zeros (evaluate it with `dlhw evaluate`),
    sparsity.json / sparsity.md (per module and overall), plots/sparsity.png and report.md with the
    disk sizes dense vs pruned, raw and compressed.

    \b
    Examples:
      dlhw prune runs/summarize-sft/<ts> --amount 0.3 --scope global
      dlhw prune runs/summarize-sft/<ts> --amount 0.5 --method wanda
      dlhw train summarize-sft --init-from runs/summarize-sft/<ts>-pruned-l1-global-30
    """
    from dlhw.errors import ConfigError
    from dlhw.pruning.run import prune_run

    parts = tuple(p.strip() for p in include.split(",") if p.strip())
    tag = "2of4" if pattern == "2:4" else f"{scope}-{round(100 * amount)}"
    out = Path(output_dir) if output_dir else Path(f"{Path(run_dir).as_posix().rstrip('/')}-pruned-{method}-{tag}")
    try:
        summary = prune_run(run_dir, out, amount=amount, scope=scope, method=method,  # type: ignore[arg-type]
                            pattern=pattern, include=parts)  # type: ignore[arg-type]
    except ConfigError:
        raise  # the CLI's one line (a locked target, a run without a model): not click's usage block
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    pruned, whole = summary["pruned_modules"], summary["model"]
    click.echo(f"pruned {len(summary['layers'])} modules: {100 * pruned['sparsity']:.2f}% zeros "
               f"({pruned['zeros']:,} / {pruned['total']:,}); whole model {100 * whole['sparsity']:.2f}%")
    click.echo(f"pruned run: {out} (sparsity.json, sparsity.md, plots/sparsity.png, report.md); "
               f"next: dlhw evaluate {out}")
