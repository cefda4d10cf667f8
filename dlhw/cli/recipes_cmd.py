"""``dlhw recipes``: what can be trained (or run), one line each."""

from __future__ import annotations

import click

from dlhw.config import load_yaml
from dlhw.core.registry import FAMILIES, RECIPES, presets_of


@click.command()
def recipes_cmd() -> None:
    """List the recipes: name, family, presets, the commands that work with it, and what it does."""
    rows = [(r.name, r.family, ",".join(presets_of(load_yaml(r.config_file))),
             ",".join(FAMILIES[r.family].verbs()), r.summary) for r in RECIPES.values()]
    titles = ("recipe", "family", "presets", "verbs", "description")
    widths = [max(len(row[i]) for row in [titles, *rows]) for i in range(4)]
    for row in [titles, *rows]:
        click.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(row[:4], widths, strict=True)) + f"  {row[4]}")
