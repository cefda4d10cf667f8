"""``dlhw prompt TASK``: prompting without training (BBH sports, summarization shots, ...).

Each task is a subcommand in its family's own module, listed in :data:`PROMPT_TASKS` as an import
string and imported only when that task runs (or its ``--help`` is asked for), so ``dlhw --help``
stays fast. A prompt run writes a run directory like training does (``config.yaml``, ``eval.json``,
``report.md``), so ``dlhw report`` and ``dlhw report compare`` read it.
"""

from __future__ import annotations

import click

from dlhw.core.imports import import_string

PROMPT_TASKS: dict[str, str] = {
    "bbh-sports": "dlhw.families.prompting.cli:bbh_sports_cmd",
    "summarize": "dlhw.families.summarization.prompt_cli:summarize_prompt_cmd",
}
"""Subcommand name -> ``module:command``."""


class _LazyTasks(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(PROMPT_TASKS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = PROMPT_TASKS.get(cmd_name)
        return import_string(target) if target else None


@click.group(cls=_LazyTasks)
def prompt_group() -> None:
    """Evaluate prompting strategies on a task with a pretrained model (nothing is trained).

    Each task writes a run directory (config, per-strategy predictions, metrics, plots, report) that
    `dlhw report` and `dlhw report compare` read.
    """
