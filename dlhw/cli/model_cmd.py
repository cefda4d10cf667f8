"""``dlhw model summary RUN|MODEL``."""

from __future__ import annotations

import click


@click.group()
def model_group() -> None:
    """Inspect models: a run's fine-tuned model or any causal LM."""


@model_group.command("summary")
@click.argument("target")
@click.option("--depth", type=click.IntRange(min=1), default=4, show_default=True,
              help="Levels of the module tree to print.")
def summary_cmd(target: str, depth: int) -> None:
    """Print the module tree of TARGET with total and trainable parameters per module.

    TARGET is a chat run directory (the model as it was trained: adapters, or all but four
    decoder layers frozen) or a Hugging Face model id / local model folder.

    \b
    Examples:
      dlhw model summary runs/chat-partial/20261123-101500
      dlhw model summary runs/chat-lora/20261123-101500 --depth 6
    """
    from dlhw.models.chat_run import load_any_model
    from dlhw.models.summary import module_tree

    model, label = load_any_model(target)
    click.echo(label)
    for line in module_tree(model, depth):
        click.echo(line)
