"""``dlhw recipes``: what can be trained, one line each."""

from __future__ import annotations

import click

from dlhw.config import load_yaml
from dlhw.recipes import RECIPES, presets_of


@click.command()
def recipes_cmd() -> None:
    """List the recipes: name, family, presets and what each trains."""
    rows = [(r.name, r.family, ",".join(presets_of(load_yaml(r.config_file))), r.summary) for r in RECIPES.values()]
    widths = [max(len(row[i]) for row in [("recipe", "family", "presets", ""), *rows]) for i in range(3)]
    click.echo(f"{'recipe':<{widths[0]}}  {'family':<{widths[1]}}  {'presets':<{widths[2]}}  description")
    for name, family, presets, summary in rows:
        click.echo(f"{name:<{widths[0]}}  {family:<{widths[1]}}  {presets:<{widths[2]}}  {summary}")
