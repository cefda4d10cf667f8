"""The ``dlhw`` command line: one Click group, every command registered in :data:`COMMANDS`.

The shared commands are listed here; each family's batch verb comes from the family registry
(``Family.batch_verb``). Commands parse their options and call the library; heavy imports
(torch, transformers) happen inside the command so that ``dlhw --help`` and ``dlhw recipes``
answer at once.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from dlhw import __version__
from dlhw.cli.config_cmd import config_group
from dlhw.cli.data_cmd import data_group
from dlhw.cli.download_cmd import download_cmd
from dlhw.cli.env_cmd import env_cmd
from dlhw.cli.evaluate_cmd import evaluate_cmd
from dlhw.cli.export_cmd import export_cmd
from dlhw.cli.model_cmd import model_group
from dlhw.cli.prompt_cmd import prompt_group
from dlhw.cli.prune_cmd import prune_cmd
from dlhw.cli.recipes_cmd import recipes_cmd
from dlhw.cli.report_cmd import report_group
from dlhw.cli.train_cmd import train_cmd
from dlhw.core import threads as thread_policy
from dlhw.core.imports import import_string
from dlhw.core.registry import FAMILIES
from dlhw.core.writable import not_writable
from dlhw.engine.launch import LOG_LEVEL_ENV
from dlhw.errors import ConfigError, DlhwError

COMMANDS: dict[str, click.Command] = {
    "recipes": recipes_cmd,
    "config": config_group,
    "train": train_cmd,
    "evaluate": evaluate_cmd,
    "export": export_cmd,
    **{f.batch_verb: import_string(f.batch_command) for f in FAMILIES.values() if f.batch_verb and f.batch_command},
    "prompt": prompt_group,
    "prune": prune_cmd,
    "model": model_group,
    "data": data_group,
    "download": download_cmd,
    "report": report_group,
    "env": env_cmd,
}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a test runner may swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(level: int) -> None:
    """One handler on stderr for the ``dlhw`` logger: INFO lines bare (progress, what a step found),
    DEBUG lines (-v) named by their module; the result lines are the commands' own ``click.echo``."""
    root = logging.getLogger("dlhw")
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)  # a second invocation in one process (tests) replaces the first
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(
        "%(levelname)s %(name)s: %(message)s" if level <= logging.DEBUG else "%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dlhw")
@click.option("-v", "--verbose", is_flag=True, help="Also print debug lines.")
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings, errors and the command's results.")
@click.option("--threads", metavar="N", default=None,
              help=f"CPU threads for torch, OpenMP and MKL, in this process and its children (also {thread_policy.THREADS_ENV}) "
                   "[default: the usable CPUs (affinity and cgroup CPU quota); 1 for `train --preset tiny`]. Without "
                   "--threads or DLHW_THREADS, an OMP_NUM_THREADS you set wins. `dlhw env` shows the decision.")
def cli(verbose: bool, quiet: bool, threads: str | None) -> None:
    """dlhw: train, evaluate, export and batch-run the model families of a deep-learning course.

    \b
    Start offline in minutes on a CPU:
      dlhw recipes                              what can be trained, and with which commands
      dlhw train RECIPE --preset tiny           embedded data, a tiny model, minutes on a CPU
      dlhw evaluate runs/RECIPE/<timestamp>
    """
    if verbose and quiet:
        raise click.UsageError("-v and -q contradict each other; pick one")
    inherited = logging.getLevelName(os.environ.get(LOG_LEVEL_ENV, "INFO"))  # a torchrun worker: its launcher's
    level = logging.DEBUG if verbose else logging.WARNING if quiet else \
        inherited if isinstance(inherited, int) else logging.INFO
    setup_logging(level)
    # before any command imports torch: OpenMP reads these variables when torch loads it
    thread_policy.apply(thread_policy.decide(threads, os.environ))
    if level >= logging.WARNING:  # no progress bars either; read when tqdm / huggingface_hub are imported (later)
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


for _name, _command in COMMANDS.items():
    cli.add_command(_command, _name)


def exit_code_for(err: BaseException) -> int | None:
    """The exit code of an error a user can act on (printed without a traceback), else None."""
    if isinstance(err, ConfigError):
        return 2
    if isinstance(err, DlhwError):
        return 1
    return None


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2 (usage) or 1."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (ConfigError, DlhwError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(exit_code_for(err))
    except OSError as err:  # a read-only or foreign folder, refused at whichever writer met it first
        refused = not_writable(err)
        if refused is None:
            raise
        click.echo(f"error: {refused}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
