"""``dlhw download``: every model and dataset the recipes' configs name, fetched into the caches that
training reads offline afterwards (``HF_HOME``; ``TORCH_HOME`` for torchvision weights).

Each family says what a resolved config of its reads (``Family.hub_assets``: Hub models, Hub datasets
with their configuration, and torchvision weight URLs; local and embedded sources read none), so
``dlhw download`` knows no family's keys. How each kind is fetched:

- model: :func:`huggingface_hub.snapshot_download` -- first a dry run (the commit, the file list and
  sizes), then the files a torch model loads: never TensorFlow / Flax / ONNX / GGUF copies of the
  weights, and no ``*.bin`` / ``*.pt`` where the repository has safetensors.
- dataset: ``datasets.load_dataset_builder(id, config).download_and_prepare()``. Offline,
  ``load_dataset(id)`` reads only a dataset prepared in ``HF_DATASETS_CACHE`` (a raw snapshot of the
  repository is not enough), and a snapshot would fetch every configuration (all Common Voice locales).
- url: ``torch.hub.download_url_to_file`` into ``TORCH_HOME/hub/checkpoints``, where torchvision looks.

Offline (``HF_HUB_OFFLINE=1``) or with ``--dry-run`` nothing is fetched: the assets are listed with
what the local cache already holds.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlhw.core.family import HubAsset

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
"""A Hub repository id (``owner/name`` or a legacy ``name``)."""

NOT_FOR_TORCH = ("*.h5", "*.msgpack", "*.ot", "*.onnx", "*.onnx_data", "*.gguf", "*.tflite", "*.mlmodel",
                 "*.pb", "onnx/*", "openvino/*", "coreml/*", "original/*", "tf_model*", "flax_model*",
                 "rust_model*")
"""Files of a model repository that torch never loads (other frameworks' copies of the weights)."""
PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth")
"""Weights also skipped where the repository has safetensors (transformers loads those first)."""


def is_hub_id(name: str | None) -> bool:
    """A Hub id, not a local folder (nor a dlhw run directory)."""
    return bool(name) and not Path(str(name)).exists() and bool(HUB_ID.fullmatch(str(name)))


def hub_model(name: str | None, purpose: str) -> list[HubAsset]:
    """``[model asset]`` for a Hub id; ``[]`` for None (a tiny model) or a local folder."""
    return [HubAsset("model", str(name), purpose)] if is_hub_id(name) else []


def hub_dataset(name: str | None, purpose: str, config_name: str | None = None) -> list[HubAsset]:
    """``[dataset asset]`` for a Hub id (with its configuration); ``[]`` for None or a local path."""
    return [HubAsset("dataset", str(name), purpose, config_name=config_name)] if is_hub_id(name) else []


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set (huggingface_hub's own reading of it)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


@dataclass
class Needed:
    """An asset and the recipes that need it."""

    asset: HubAsset
    recipes: list[str]


def assets_of(recipes: list[str], preset: str = "full", overrides: tuple[str, ...] = ()) -> list[Needed]:
    """What the recipes' configs (resolved with ``preset`` and ``--set`` items) read, each asset once."""
    from dlhw.core.registry import family_of, resolve_config

    found: dict[HubAsset, Needed] = {}
    for recipe in recipes:
        family = family_of(recipe)
        config = resolve_config(recipe, preset, overrides=overrides)
        for asset in family.hub_assets(config) if family.hub_assets else []:
            found.setdefault(asset, Needed(asset, [])).recipes.append(recipe)
    return list(found.values())


@dataclass
class Fetched:
    """One asset in the cache: the commit (or hash) it resolved to, its files and bytes."""

    revision: str | None
    files: int | None
    bytes: int | None
    where: str


def cached_revision(asset: HubAsset) -> str | None:
    """The commit the local Hub cache holds for ``asset`` (its ref), without the network; None if absent."""
    if asset.kind == "url":
        path = url_target(asset.repo_id)
        return url_revision(asset.repo_id) if path.is_file() else None
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    folder = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=asset.repo_id, repo_type=asset.kind)
    ref = folder / "refs" / (asset.revision or "main")
    if ref.is_file():
        return ref.read_text(encoding="utf-8").strip()
    if asset.revision and (folder / "snapshots" / asset.revision).is_dir():
        return asset.revision
    return None


def url_target(url: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def url_revision(url: str) -> str | None:
    """The hash torchvision puts in its file names (``efficientnet_b0_rwightman-7f5810bc.pth``)."""
    match = re.search(r"-([0-9a-f]{6,})\.\w+$", url)
    return match.group(1) if match else None


def fetch(asset: HubAsset) -> Fetched:
    """Bring ``asset`` into its cache (progress bars from the library that fetches it)."""
    if asset.kind == "model":
        return fetch_model(asset)
    if asset.kind == "dataset":
        return fetch_dataset(asset)
    return fetch_url(asset)


def fetch_model(asset: HubAsset) -> Fetched:
    """The model repository's torch files at one commit (see the module docstring)."""
    from huggingface_hub import snapshot_download

    listing: Any = snapshot_download(asset.repo_id, repo_type="model", revision=asset.revision,
                                     ignore_patterns=list(NOT_FOR_TORCH), dry_run=True)
    names = [f.filename for f in listing]
    skip = list(NOT_FOR_TORCH)
    if any(n.endswith(".safetensors") for n in names):
        skip += PICKLED_WEIGHTS
    kept = [f for f in listing if not any(fnmatch.fnmatch(f.filename, p) for p in skip)]
    commit = listing[0].commit_hash if listing else asset.revision
    folder = snapshot_download(asset.repo_id, repo_type="model", revision=commit, ignore_patterns=skip)
    return Fetched(commit, len(kept), sum(f.file_size or 0 for f in kept), str(folder))


def fetch_dataset(asset: HubAsset) -> Fetched:
    """The dataset's configuration downloaded and prepared, as ``load_dataset`` reads it offline later."""
    import datasets

    builder = datasets.load_dataset_builder(asset.repo_id, asset.config_name, revision=asset.revision)
    builder.download_and_prepare()
    match = re.search(r"@([0-9a-f]{40})", str(getattr(builder, "base_path", "") or ""))
    info = builder.info
    size = (info.download_size or 0) + (info.dataset_size or 0)
    return Fetched(match.group(1) if match else asset.revision, None, size or None, str(builder.cache_dir))


def fetch_url(asset: HubAsset) -> Fetched:
    """A weights file torch caches by URL (torchvision's pretrained weights)."""
    import torch

    target = url_target(asset.repo_id)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(asset.repo_id, str(target), progress=True)
    return Fetched(url_revision(asset.repo_id), 1, target.stat().st_size, str(target))


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
