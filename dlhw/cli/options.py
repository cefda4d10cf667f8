"""Options several commands share, so they read and behave the same everywhere."""

from __future__ import annotations

import click

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
