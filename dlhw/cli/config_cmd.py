"""``dlhw config show | validate``."""

from __future__ import annotations

import click

from dlhw.config import dump_yaml, explain, to_dict
from dlhw.core.options import config_option, preset_option, set_option
from dlhw.core.registry import family_of, resolve_config, validate_file


@click.group()
def config_group() -> None:
    """Show resolved recipe configs and validate config files."""


@config_group.command("show")
@click.argument("recipe")
@preset_option
@config_option
@set_option
@click.option("--explain", "explain_keys", is_flag=True, help="List every key with its type and meaning instead.")
def show_cmd(recipe: str, preset: str, config_file: str | None, overrides: tuple[str, ...], explain_keys: bool) -> None:
    """Print RECIPE's config as YAML, with the preset and --set overrides applied."""
    if explain_keys:
        cls = family_of(recipe).config_class
        for key, type_name, doc in explain(cls):
            click.echo(f"{key:<32} {type_name:<24} {doc}")
        return
    config = resolve_config(recipe, preset, config_file, overrides)
    click.echo(dump_yaml(to_dict(config)), nl=False)


@config_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate_cmd(files: tuple[str, ...]) -> None:
    """Check config FILES (recipe files with every preset, or a run's config.yaml).

    Unknown keys and wrong types are reported with their dotted path; exit code 2 on the first
    invalid file.
    """
    for path in files:
        for checked in validate_file(path):
            click.echo(f"ok  {path}: {checked}")
