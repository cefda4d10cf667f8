"""``dlhw download RECIPE... [--preset full] [--dry-run]``."""

from __future__ import annotations

import click

from dlhw.core.options import preset_option, set_option
from dlhw.errors import DlhwError


@click.command()
@click.argument("recipes", nargs=-1, required=True, metavar="RECIPE...")
@preset_option
@set_option
@click.option("--dry-run", is_flag=True, help="List the models and datasets without fetching anything.")
def download_cmd(recipes: tuple[str, ...], preset: str, overrides: tuple[str, ...], dry_run: bool) -> None:
    """Fetch every model and dataset the RECIPEs' configs name into the Hugging Face cache.

    Models go to HF_HOME's hub cache (the files torch loads, at one commit), datasets are downloaded
    and prepared as `load_dataset` reads them offline, torchvision weights go to TORCH_HOME. Then
    `HF_HUB_OFFLINE=1 dlhw train RECIPE` runs without the network. A summary lists each id, its
    revision, files and size. With --dry-run, or offline (HF_HUB_OFFLINE=1), nothing is fetched:
    the list says what the cache already holds.

    \b
    Examples:
      dlhw download chat-lora summarize-sft --dry-run
      dlhw download ner tts                            then: HF_HUB_OFFLINE=1 dlhw train ner
      dlhw download chat-lora --set model.name=meta-llama/Llama-3.2-3B-Instruct
    """
    from dlhw.core.download import assets_of, cached_revision, fetch, hub_offline, human_size

    needed = assets_of(list(recipes), preset, overrides)
    offline = hub_offline()
    if not needed:
        click.echo(f"nothing to download: {', '.join(recipes)} [{preset}] read local or embedded data and models only")
        return
    rows = []
    failed = []
    for item in needed:
        asset = item.asset
        name = asset.repo_id + (f" ({asset.config_name})" if asset.config_name else "")
        if dry_run or offline:
            cached = cached_revision(asset)
            rows.append((asset.kind, name, asset.revision or "default", f"cached {cached[:12]}" if cached else
                         "not cached", ", ".join(item.recipes) + f": {asset.purpose}"))
            continue
        click.echo(f"fetching {asset.kind} {name} ({asset.purpose})", err=True)
        try:
            got = fetch(asset)
        except Exception as err:  # one failure (gated, missing) must not hide the rest
            failed.append(f"{name}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            rows.append((asset.kind, name, asset.revision or "default", "FAILED", ", ".join(item.recipes)))
            continue
        files = "" if got.files is None else f"{got.files} files, "
        rows.append((asset.kind, name, (got.revision or "?")[:12], f"{files}{human_size(got.bytes)}",
                     ", ".join(item.recipes) + f": {asset.purpose}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("kind", "id", "revision", "in cache" if dry_run or offline else "fetched")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " +
                   (row[4] if len(row) > 4 else "needed by"))
    if offline and not dry_run:
        click.echo(f"offline (HF_HUB_OFFLINE=1): listed {len(rows)} models and datasets, fetched nothing; unset "
                   "HF_HUB_OFFLINE to download them")
    elif dry_run:
        click.echo(f"dry run: {len(rows)} models and datasets, fetched nothing")
    if failed:
        raise DlhwError(f"{len(failed)} of {len(rows)} could not be fetched: " + "; ".join(failed)
                        + " (gated models need `hf auth login` and the model's terms accepted on the Hub)")
    if not (dry_run or offline):
        click.echo(f"fetched {len(rows)} into the caches; train offline with HF_HUB_OFFLINE=1")
