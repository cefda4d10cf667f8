"""``dlhw prompt TASK``: prompting without training (BBH sports, summarization shots, ...).

The tasks come from the family registry (``Family.prompt_tasks``): each is a subcommand in its
family's own module, imported only when that task runs (or its ``--help`` is asked for), so
``dlhw --help`` stays fast. A prompt run writes a run directory like training does
(``config.yaml``, ``eval.json``, ``report.md``), so ``dlhw report`` and ``dlhw report compare`` read it.
"""

from __future__ import annotations

import click

from dlhw.core.imports import import_string
from dlhw.core.registry import FAMILIES


def prompt_tasks() -> dict[str, str]:
    """Task name -> ``module:command``, over every family."""
    return {task: target for family in FAMILIES.values() for task, target in family.prompt_tasks.items()}


class _LazyTasks(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(prompt_tasks())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = prompt_tasks().get(cmd_name)
        return import_string(target) if target else None


@click.group(cls=_LazyTasks)
def prompt_group() -> None:
    """Evaluate prompting strategies on a task with a pretrained model (nothing is trained).

    Each task writes a run directory (config, per-strategy predictions, metrics, plots, report) that
    `dlhw report` and `dlhw report compare` read.
    """
