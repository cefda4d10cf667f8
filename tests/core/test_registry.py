"""The family registry: every entry point resolves, declared options match the functions behind
them, every config field is documented, and recipes pin what they train."""

from __future__ import annotations

import inspect

import pytest

from dlhw.config import explain
from dlhw.core.family import lazy, resolve_hook
from dlhw.core.imports import import_string
from dlhw.core.registry import FAMILIES, RECIPES, TRAINING_SECTION, family_of, resolve_config
from dlhw.errors import ConfigError
from tests.conftest import run_cli

HOOKS = ("train", "evaluate", "predictor", "inspect", "load_model", "calibration")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_hook_of_a_family_resolves_to_a_function(name):
    family = FAMILIES[name]
    for attr in HOOKS:
        hook = getattr(family, attr)
        if hook is not None:
            assert inspect.isfunction(resolve_hook(hook)), f"{name}.{attr}"
    for section in family.report_sections:
        assert section == TRAINING_SECTION or inspect.isfunction(resolve_hook(section))
    if family.export:
        for attr in ("load", "exporter", "checker", "tensorrt", "int8"):
            hook = getattr(family.export, attr)
            assert hook is None or inspect.isfunction(resolve_hook(hook)), f"{name}.export.{attr}"
    if family.batch_command:
        assert import_string(family.batch_command).name == family.batch_verb
    for task, target in family.prompt_tasks.items():
        assert import_string(target).name == task


def test_a_lazy_hook_imports_its_module_on_the_first_call_only():
    hook = lazy("json:dumps")
    assert hook([1]) == "[1]" and resolve_hook(hook) is __import__("json").dumps
    with pytest.raises(ValueError, match="expected 'package.module:name'"):
        lazy("json.dumps")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_declared_options_are_the_parameters_of_the_functions_behind_them(name):
    family = FAMILIES[name]
    evaluate = inspect.signature(resolve_hook(family.evaluate)).parameters
    assert set(family.options["evaluate"]) == set(evaluate) - {"run_dir"}
    if family.export:
        from dlhw.backends.export import export_run

        export = set(inspect.signature(export_run).parameters) - {"run_dir"}
        assert set(family.options["export"]) <= export
        assert ("int8" in family.options["export"]) == (family.export.int8 is not None)
        assert ("tensorrt" in family.options["export"]) == (family.export.tensorrt is not None)
        if family.export.int8 is not None:  # one signature for every int8 export
            assert list(inspect.signature(resolve_hook(family.export.int8)).parameters) == ["job", "out_dir", "force"]
    assert ("inspect" in family.options) == (family.inspect is not None)


def test_every_exported_family_offers_tensorrt():
    for name in ("caption", "chat", "ner", "summarization", "tts", "prompting"):
        assert FAMILIES[name].export.tensorrt is not None, name
        assert {"tensorrt", "fp16", "max_batch"} <= set(FAMILIES[name].options["export"]), name
    assert "force" in FAMILIES["ner"].options["export"] and "force" not in FAMILIES["chat"].options["export"]


def test_prompt_tasks_come_from_the_registry():
    from dlhw.cli.prompt_cmd import prompt_tasks

    assert set(prompt_tasks()) == {"bbh-sports", "summarize"}
    assert "prompt summarize" in FAMILIES["summarization"].verbs()
    assert "prompt bbh-sports" in FAMILIES["prompting"].verbs()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_config_field_has_a_docstring(name):
    rows = explain(FAMILIES[name].config_class)
    missing = [key for key, _, doc in rows if not doc]
    assert not missing, f"{name}: fields without a docstring: {missing}"
    keys = {key for key, _, _ in rows}
    assert {"recipe", "preset", "seed", "train.epochs", "train.learning_rate"} <= keys  # the base run config


def test_each_recipe_pins_what_it_trains_and_a_contradiction_names_the_right_recipe():
    for recipe in RECIPES.values():
        config = resolve_config(recipe.name, "tiny")
        for key, value in recipe.pins:
            node = config
            for part in key.split("."):
                node = getattr(node, part)
            assert node == value, (recipe.name, key)
    with pytest.raises(ConfigError, match=r"model\.arch: recipe caption-rnn trains rnn, not attention; "
                                          r"use `dlhw train caption-attention`"):
        resolve_config("caption-rnn", "tiny", overrides=["model.arch=attention"])


def test_recipes_lists_the_verbs_of_every_recipe():
    code, out = run_cli("recipes")
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["recipe", "family", "presets", "verbs"]
    start, end = header.index("verbs"), header.index("description")
    for recipe in RECIPES.values():
        line = next(ln for ln in lines if ln.startswith(recipe.name + " "))
        assert line.split()[1:3] == [recipe.family, "full,tiny"], line
        assert line[start:end].strip() == ",".join(family_of(recipe.name).verbs()), line
    verbs = {ln.split()[0]: ln[start:end].strip() for ln in lines}
    assert verbs["caption-rnn"] == "train,evaluate,export,caption,data inspect"
    assert verbs["chat-lora"] == "train,evaluate,export,chat"


def test_data_dir_means_the_family_s_local_data():
    from dlhw.core.registry import data_dir_overrides

    assert data_dir_overrides(FAMILIES["chat"], "/d") == ("data.path=/d", "data.source=local")
    assert data_dir_overrides(FAMILIES["caption"], "/d") == ("data.data_dir=/d", "data.source=flickr8k")
    config = resolve_config("chat-lora", "tiny", overrides=data_dir_overrides(FAMILIES["chat"], "/d"))
    assert (config.data.source, config.data.path) == ("local", "/d")
