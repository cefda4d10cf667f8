"""``dlhw data inspect FAMILY``: look at a family's data before training on it."""

from __future__ import annotations

import json

import click

from dlhw.core.options import family_options, options_epilog, preset_option, set_option
from dlhw.core.registry import FAMILIES

INSPECTABLE = [name for name, family in FAMILIES.items() if family.inspect]


@click.group()
def data_group() -> None:
    """Look at a dataset before training on it."""


@data_group.command("inspect")
@click.argument("family_name", metavar="FAMILY", type=click.Choice(INSPECTABLE))
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The family's local data in DIR (as `dlhw train --data-dir`).")
@preset_option
@set_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the figures [default: runs/inspect/FAMILY].")
@click.pass_context
def inspect_cmd(ctx: click.Context, family_name: str, **_: object) -> None:
    """Write figures describing FAMILY's data (lengths, frequent tokens, samples, and whatever the
    family checks) and print the numbers behind them as JSON.

    Without --data-dir the preset's source is used (full: the real dataset; tiny: the family's
    embedded data). Problems that would stop training (a test split emptied by overlap, every
    speaker filtered out) are printed as warnings and listed under "warnings"; the exit code is 0.
    """
    from dlhw.core.registry import data_dir_overrides, recipes_of, resolve_config

    family = FAMILIES[family_name]
    options = family_options(ctx, family, "inspect", shared=("family_name",))
    overrides = tuple(options.get("overrides") or ())
    if options.get("data_dir"):
        overrides = (*data_dir_overrides(family, options["data_dir"]), *overrides)
    config = resolve_config(recipes_of(family.name)[0].name, options.get("preset") or "full", None, overrides)
    out_dir = options.get("out_dir") or f"runs/inspect/{family.name}"
    result = family.require("inspect")(config, out_dir)
    for warning in result.get("warnings") or ():
        click.echo(f"warning: {warning}", err=True)
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


inspect_cmd.epilog = options_epilog(inspect_cmd, "inspect")
