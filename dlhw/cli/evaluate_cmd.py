"""``dlhw evaluate RUN``: score a run with its family's metrics."""

from __future__ import annotations

import json

import click

from dlhw.core.options import family_options, options_epilog


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Split to score [default: the config's eval.split, test].")
@click.option("--beam-size", type=click.IntRange(min=1), default=None,
              help="1 = greedy; K > 1 = beam search with K beams [default: eval.beam_size].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Inputs per batch.")
@click.option("--device", default=None, help="auto, cpu or cuda [default: the run's train.device].")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime", "tensorrt"]), default="torch",
              show_default=True, help="Where the model runs; onnxruntime/tensorrt use RUN/export/onnx "
                                      "(make it with `dlhw export RUN --onnx`).")
@click.pass_context
def evaluate_cmd(ctx: click.Context, run: str, **_: object) -> None:
    """Score the model of run directory RUN: writes eval.json, plots and report.md.

    The metrics and figures are those of the run's family (its recipe's row in `dlhw recipes`;
    the README lists each family's metrics). Each family takes only the options that mean
    something for it; another one is a usage error (exit code 2) that names the options it takes.
    While another command writes RUN (training, another evaluation), it is refused (exit code 2).
    """
    from dlhw.core.locks import holding
    from dlhw.core.registry import family_of_run
    from dlhw.core.runs import require_run_dir

    run_dir = require_run_dir(run)
    family = family_of_run(run_dir)
    options = family_options(ctx, family, "evaluate", shared=("run",))
    with holding(run_dir):  # eval.json, predictions and report.md are rewritten
        result = family.evaluate(run_dir, **options)
    click.echo(json.dumps(result["metrics"], indent=2, ensure_ascii=False))
    click.echo(f"wrote {run_dir / 'eval.json'} and {run_dir / 'report.md'}")


evaluate_cmd.epilog = options_epilog(evaluate_cmd, "evaluate")
