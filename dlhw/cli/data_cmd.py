"""``dlhw data inspect FAMILY``."""

from __future__ import annotations

import json

import click

from dlhw.cli.options import preset_option, set_option


@click.group()
def data_group() -> None:
    """Look at a dataset before training on it."""


@data_group.command("inspect")
@click.argument("family", type=click.Choice(["caption"]))
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Local dataset directory (Flickr8k: Kaggle or original layout).")
@preset_option
@set_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/inspect/caption",
              show_default=True, help="Folder for the PNGs.")
def inspect_cmd(family: str, data_dir: str | None, preset: str, overrides: tuple[str, ...], out_dir: str) -> None:
    """Write PNGs describing FAMILY's data: caption-length scatter and histogram, the top-20
    words, and 5 random images with their processed captions.

    Without --data-dir the preset's source is used (full: the Flickr8k hub dataset; tiny: the
    embedded scenes).
    """
    from dlhw.data.inspect import inspect_caption_data
    from dlhw.recipes import resolve_config

    if data_dir:
        overrides = (*overrides, f"data.data_dir={data_dir}", "data.source=flickr8k")
    config = resolve_config("caption-transformer", preset, None, overrides)
    result = inspect_caption_data(config.data, config.seed, out_dir)
    click.echo(json.dumps(result, indent=2))
