"""The README's registry tables (recipes, per-family options of ``evaluate`` / ``export``, batch verbs,
``data inspect``) equal what ``scripts/readme_tables.py`` generates from the family registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from dlhw.core.family import Recipe
from dlhw.core.registry import RECIPES, get_recipe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_registry_table_is_marked_in_the_readme(tables, readme):
    assert sorted(tables.readme_tables(readme)) == sorted(tables.registry_tables())


def test_the_readme_tables_match_the_registry(tables, readme):
    assert tables.stale(readme) == [], "run `python scripts/readme_tables.py --write` and review the diff"


def test_a_recipe_added_without_updating_the_readme_fails_the_check(tables, readme, monkeypatch):
    template = get_recipe("chat-lora")
    monkeypatch.setitem(RECIPES, "chat-extra", Recipe(name="chat-extra", family="chat", summary="Persian chat: a new method",
                                                      yaml=template.config_file))
    assert tables.stale(readme) == ["recipes"]
    fixed = tables.rewrite(readme)
    assert "chat-extra " in tables.readme_tables(fixed)["recipes"]
    assert tables.stale(fixed) == []
    assert fixed.replace(tables.readme_tables(fixed)["recipes"], "") == \
        readme.replace(tables.readme_tables(readme)["recipes"], "")  # nothing else rewritten


def test_an_edited_table_fails_the_check(tables, readme):
    edited = readme.replace("| chat | `--batch-size`, `--device` |", "| chat | `--batch-size` |", 1)
    assert edited != readme
    assert tables.stale(edited) == ["evaluate"]
