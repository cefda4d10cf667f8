"""``dlhw evaluate RUN``."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Split to score [default: the config's eval.split, test].")
@click.option("--beam-size", type=click.IntRange(min=1), default=None,
              help="1 = greedy; K > 1 = beam search with K beams [default: eval.beam_size].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Images per batch.")
@click.option("--device", default=None, help="auto, cpu or cuda [default: the run's train.device].")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime", "tensorrt"]), default="torch",
              show_default=True, help="Where the model runs; onnxruntime/tensorrt use RUN/export/onnx "
                                      "(make it with `dlhw export RUN --onnx`).")
def evaluate_cmd(run: str, split: str | None, beam_size: int | None, batch_size: int | None, device: str | None,
                 backend: str) -> None:
    """Score the model of run directory RUN: writes eval.json, plots and report.md.

    Captioning: BLEU-1..4 (corpus BLEU over all references of each image), CIDEr, a grid of 5
    images with generated and reference captions, and for caption-attention a per-word attention
    heatmap.
    """
    from pathlib import Path

    from dlhw.config import load_yaml
    from dlhw.recipes import FAMILIES, get_recipe
    from dlhw.training.rundir import require_run_dir

    run_dir = require_run_dir(run)
    family = FAMILIES[get_recipe(load_yaml(Path(run_dir) / "config.yaml")["recipe"]).family]
    result = family.load("evaluate")(run_dir, split=split, beam_size=beam_size, batch_size=batch_size,
                                     device=device, backend=backend)
    click.echo(json.dumps(result["metrics"], indent=2))
    click.echo(f"wrote {run_dir / 'eval.json'} and {run_dir / 'report.md'}")
