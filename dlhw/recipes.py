"""The recipe registry: recipe name -> family, config file, and how to resolve its config.

A family names its config dataclass and its train / evaluate entry points as import strings,
so listing recipes or showing a config never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from dlhw.config import ConfigError, deep_merge, from_dict, load_yaml, parse_override


def import_string(path: str) -> Any:
    """The object named by ``"package.module:name"``, imported on first use."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Family:
    name: str
    config_class: str
    """``module:Class`` of the family's config dataclass."""
    train: str
    """``module:function(config, run_dir, resume)`` that trains a run."""
    evaluate: str
    """``module:function(run_dir, **options)`` that evaluates a run."""

    def load(self, attr: str) -> Any:
        return import_string(getattr(self, attr))


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str
    summary: str

    @property
    def config_file(self) -> Path:
        return Path(str(resources.files("dlhw.configs").joinpath(f"{self.name}.yaml")))


FAMILIES: dict[str, Family] = {
    "caption": Family(
        name="caption",
        config_class="dlhw.config:CaptionConfig",
        train="dlhw.training.caption:train_caption",
        evaluate="dlhw.evaluation.caption:evaluate_caption_run",
    ),
    "chat": Family(
        name="chat",
        config_class="dlhw.config_chat:ChatConfig",
        train="dlhw.training.chat:train_chat",
        evaluate="dlhw.evaluation.chat:evaluate_chat_run",
    ),
}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("caption-rnn", "caption", "EfficientNet-B0 pooled vector -> LSTM decoder"),
        Recipe("caption-attention", "caption", "EfficientNet-B0 spatial map -> soft-attention LSTM"),
        Recipe("caption-transformer", "caption", "EfficientNet-B0 spatial map -> Transformer decoder"),
        Recipe("chat-prompt-tuning", "chat", "Persian chat: prompt tuning (virtual-token embeddings)"),
        Recipe("chat-prefix-tuning", "chat", "Persian chat: prefix tuning (key/value prefixes per layer)"),
        Recipe("chat-p-tuning", "chat", "Persian chat: P-tuning (virtual tokens from a prompt encoder)"),
        Recipe("chat-lora", "chat", "Persian chat: LoRA / DoRA / rsLoRA / LoHa (method.variant)"),
        Recipe("chat-partial", "chat", "Persian chat: train decoder layers 0, 1, L-2, L-1 only"),
    ]
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)} (see `dlhw recipes`)"
        ) from None


def presets_of(raw: dict[str, Any]) -> list[str]:
    return ["full", *raw.get("presets", {})]


def resolve_config(
    recipe: str | None = None,
    preset: str = "full",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    seed: int | None = None,
) -> Any:
    """Resolve a recipe's config: YAML file -> preset overlay -> ``--set`` overrides -> dataclass.

    ``config_file`` replaces the shipped recipe YAML; it may be a recipe file (with ``presets:``)
    or a resolved ``config.yaml`` from a run directory.
    """
    raw = load_yaml(config_file) if config_file else None
    if recipe is None:
        if raw is None or "recipe" not in raw:
            raise ConfigError("no recipe given and the config file has no `recipe:` key")
        recipe = raw["recipe"]
    spec = get_recipe(recipe)
    if raw is None:
        raw = load_yaml(spec.config_file)
    presets = raw.pop("presets", {}) or {}
    if preset != raw.get("preset", "full"):
        if preset not in presets:
            raise ConfigError(
                f"recipe {recipe!r} has no preset {preset!r}; presets: {', '.join(['full', *presets])}"
            )
        raw = deep_merge(raw, presets[preset])
    raw = deep_merge(raw, {"recipe": recipe, "preset": preset})
    for item in overrides:
        raw = deep_merge(raw, parse_override(item))
    if seed is not None:
        raw["seed"] = seed
    cls = FAMILIES[spec.family].load("config_class")
    return from_dict(cls, raw)


def validate_file(path: str | Path) -> list[str]:
    """Validate a recipe YAML (every preset) or a resolved run config; return what was checked."""
    raw = load_yaml(path)
    recipe = raw.get("recipe")
    if recipe is None:
        raise ConfigError(f"{path}: missing `recipe:` (one of {', '.join(RECIPES)})")
    get_recipe(recipe)
    presets = presets_of(raw) if "presets" in raw else [raw.get("preset", "full")]
    return [f"{recipe} [{resolve_config(recipe, p, config_file=path).preset}]" for p in presets]
