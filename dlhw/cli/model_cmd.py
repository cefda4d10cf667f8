"""``dlhw model summary RUN|MODEL``."""

from __future__ import annotations

import click


@click.group()
def model_group() -> None:
    """Inspect models: a run's model as trained, or any Hugging Face model."""


@model_group.command("summary")
@click.argument("target")
@click.option("--depth", type=click.IntRange(min=1), default=4, show_default=True,
              help="Levels of the module tree to print.")
def summary_cmd(target: str, depth: int) -> None:
    """Print the module tree of TARGET with total and trainable parameters per module.

    TARGET is a run directory (its model as it was trained: frozen parts show 0 trainable) or a
    Hugging Face model id / local model folder.

    \b
    Examples:
      dlhw model summary runs/RECIPE/20261123-101500 --depth 6
      dlhw model summary path/to/hf-model-folder
    """
    from dlhw.core.runs import RunFiles
    from dlhw.reports.model_summary import module_tree

    if RunFiles(target).config.is_file():
        from dlhw.core.registry import family_of_run
        from dlhw.core.runs import require_run_dir

        model, label = family_of_run(target).require("load_model")(require_run_dir(target))
    else:
        from dlhw.lm.hub import load_any_hub_model

        model, label = load_any_hub_model(target), target
    click.echo(label)
    for line in module_tree(model, depth):
        click.echo(line)
