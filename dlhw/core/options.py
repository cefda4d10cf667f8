"""Options several commands share, so they read and behave the same everywhere, and the check
that a family-specific verb got only the options its family declares."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from dlhw.errors import ConfigError

preset_option = click.option(
    "--preset", default="full", show_default=True,
    help="Preset of the recipe: full (real models and data) or tiny (offline, CPU, minutes).",
)
config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), default=None,
    help="A YAML file replacing the recipe's shipped config (same format; a run's config.yaml works).",
)
set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override one config value by dotted key, e.g. --set train.epochs=3 (repeatable).",
)


def _flag(ctx: click.Context, name: str) -> str:
    param = next(p for p in ctx.command.params if p.name == name)
    return max(param.opts, key=len)


def family_options(ctx: click.Context, family: Any, verb: str, shared: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options of ``ctx`` that ``family`` takes on ``verb`` (by parameter name, with values).

    An option given on the command line that the family does not declare is a usage error (exit
    2) naming the options it does take; ``shared`` options (arguments, flags every family has)
    are neither checked nor returned.
    """
    accepted = family.options.get(verb, ())
    given = [name for name in ctx.params if name not in shared
             and ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]
    refused = [name for name in given if name not in accepted]
    if refused:
        takes = ", ".join(_flag(ctx, n) for n in accepted) or "no options"
        raise ConfigError(
            f"{_flag(ctx, refused[0])}: not an option of `dlhw {ctx.command_path.split(' ', 1)[-1]}` for the "
            f"{family.name} family; it takes {takes}"
        )
    return {name: ctx.params[name] for name in accepted if name in ctx.params}


def options_epilog(command: click.Command, verb: str) -> str:
    """A help epilog listing, per family, the options it takes on ``verb`` (from the registry)."""
    from dlhw.core.registry import FAMILIES

    flags = {p.name: max(p.opts, key=len) for p in command.params}
    rows = [f"  {name:<10} {', '.join(flags[o] for o in family.options.get(verb, ())) or '(none)'}"
            for name, family in FAMILIES.items() if verb in family.options]
    return "\b\nOptions each family takes:\n" + "\n".join(rows)
