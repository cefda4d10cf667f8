"""THE registry: the family packages, and the recipes they declare.

Each family is a package under ``dlhw/families/`` whose ``__init__`` builds one
:class:`~dlhw.core.family.Family` named ``FAMILY`` (its config class, recipes, typed hooks, export,
batch predictor and verb, report sections, headline metrics). Adding a family = its package +
one line in :data:`FAMILY_PACKAGES`. ``train``, ``evaluate``, ``export``, ``data inspect``,
``model summary``, ``prompt``, ``report`` and ``prune`` ask this table and never branch on a
family's name.

The packages are imported by name, so this low layer lists the families without importing their
code at module level; each package's ``__init__`` is light (no torch), its hooks import lazily.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from dlhw.config import deep_merge, from_dict, load_yaml, parse_override
from dlhw.core.family import TRAINING_SECTION, ExportSpec, Family, Recipe
from dlhw.core.runs import run_config_dict
from dlhw.errors import ConfigError

__all__ = ["FAMILIES", "FAMILY_PACKAGES", "RECIPES", "TRAINING_SECTION", "ExportSpec", "Family", "Recipe",
           "family_of", "family_of_run", "get_recipe", "load_families", "resolve_config"]

FAMILY_PACKAGES: tuple[str, ...] = (
    "dlhw.families.caption",
    "dlhw.families.chat",
    "dlhw.families.summarization",
    "dlhw.families.ner",
    "dlhw.families.tts",
    "dlhw.families.prompting",
)
"""The registration lines: one package per family, in the order `dlhw recipes` lists them."""

FAMILIES: dict[str, Family] = {}
RECIPES: dict[str, Recipe] = {}


def load_families(packages: tuple[str, ...] | None = None) -> None:
    """(Re)build :data:`FAMILIES` and :data:`RECIPES` in place from ``packages`` (default: the list)."""
    found: dict[str, Family] = {}
    recipes: dict[str, Recipe] = {}
    for package in packages if packages is not None else FAMILY_PACKAGES:
        family = importlib.import_module(package).FAMILY
        if not isinstance(family, Family):
            raise TypeError(f"{package}.FAMILY is not a dlhw.core.family.Family")
        if family.name in found:
            raise ConfigError(f"{package}: a family named {family.name!r} is registered twice")
        found[family.name] = family
        for recipe in family.recipes:
            if recipe.family != family.name or recipe.name in recipes:
                raise ConfigError(f"{package}: recipe {recipe.name!r} names family {recipe.family!r} or is taken")
            recipes[recipe.name] = recipe
    FAMILIES.clear()
    FAMILIES.update(found)
    RECIPES.clear()
    RECIPES.update(recipes)


load_families()


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)} (see `dlhw recipes`)"
        ) from None


def family_of(recipe: str) -> Family:
    return FAMILIES[get_recipe(recipe).family]


def family_of_run(run_dir: str | Path) -> Family:
    """The family of a run directory, from the recipe in its ``config.yaml``."""
    recipe = run_config_dict(run_dir).get("recipe")
    if not recipe:
        raise ConfigError(f"{run_dir}/config.yaml: no `recipe:` key")
    return family_of(str(recipe))


def recipes_of(family: str) -> list[Recipe]:
    return [r for r in RECIPES.values() if r.family == family]


def presets_of(raw: dict[str, Any]) -> list[str]:
    return ["full", *raw.get("presets", {})]


def _lookup(raw: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_pins(recipe: Recipe, config: Any) -> None:
    """A config value that contradicts a recipe's pin is an error naming the recipe to use."""
    for key, value in recipe.pins:
        actual = config
        for part in key.split("."):
            actual = getattr(actual, part)
        if actual != value:
            other = next((r.name for r in recipes_of(recipe.family) if (key, actual) in r.pins), None)
            hint = f"use `dlhw train {other}`" if other else f"{key} is fixed by the recipe"
            raise ConfigError(f"{key}: recipe {recipe.name} trains {value}, not {actual}; {hint}")


def data_dir_overrides(family: Family, data_dir: str) -> tuple[str, ...]:
    """The ``--set`` items that ``--data-dir DIR`` stands for in ``family``."""
    if not family.data_dir:
        raise ConfigError(f"--data-dir: the {family.name} family reads no local dataset directory")
    return tuple(item.replace("{dir}", data_dir) for item in family.data_dir)


def resolve_config(
    recipe: str | None = None,
    preset: str = "full",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    seed: int | None = None,
) -> Any:
    """Resolve a recipe's config: YAML file -> preset overlay -> ``--set`` overrides -> dataclass -> pins.

    ``config_file`` replaces the shipped recipe YAML; it may be a recipe file (with ``presets:``)
    or a resolved ``config.yaml`` from a run directory.
    """
    raw = load_yaml(config_file) if config_file else None
    if recipe is None:
        if raw is None or "recipe" not in raw:
            raise ConfigError("no recipe given and the config file has no `recipe:` key")
        recipe = str(raw["recipe"])
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
    for key, value in spec.pins:  # a pinned key the file leaves out takes the recipe's value
        if not _lookup(raw, key)[0]:
            raw = deep_merge(raw, parse_override(f"{key}={value}"))
    config = from_dict(FAMILIES[spec.family].config_class, raw)
    check_pins(spec, config)
    return config


def validate_file(path: str | Path) -> list[str]:
    """Validate a recipe YAML (every preset) or a resolved run config; return what was checked."""
    raw = load_yaml(path)
    recipe = raw.get("recipe")
    if recipe is None:
        raise ConfigError(f"{path}: missing `recipe:` (one of {', '.join(RECIPES)})")
    get_recipe(recipe)
    presets = presets_of(raw) if "presets" in raw else [raw.get("preset", "full")]
    return [f"{recipe} [{resolve_config(recipe, p, config_file=path).preset}]" for p in presets]
