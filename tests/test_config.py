from __future__ import annotations

from pathlib import Path

import pytest

from dlhw.config import ConfigError, explain, field_docs, from_dict, parse_override
from dlhw.core.registry import RECIPES, resolve_config, validate_file
from dlhw.families.caption.config import CaptionConfig

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_every_recipe_has_a_shipped_config_and_nothing_else_is_shipped():
    assert {p.stem for p in CONFIGS} == set(RECIPES)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate_with_every_preset(path: Path):
    checked = validate_file(path)
    assert checked == [f"{path.stem} [full]", f"{path.stem} [tiny]"]


def test_unknown_key_names_its_dotted_path_and_the_accepted_keys():
    with pytest.raises(ConfigError, match=r"^train\.epochz: unknown key; did you mean epochs\?; TrainConfig accepts: .*epochs"):
        resolve_config("caption-rnn", overrides=["train.epochz=3"])


def test_wrong_type_names_its_dotted_path_and_the_expected_type():
    with pytest.raises(ConfigError, match=r"^model\.hidden_dim: expected int, got str 'big'"):
        resolve_config("caption-rnn", overrides=["model.hidden_dim=big"])
    with pytest.raises(ConfigError, match=r"^model\.arch: expected one of 'rnn', 'attention', 'transformer'"):
        resolve_config("caption-rnn", overrides=["model.arch=gru"])


def test_contradictions_are_rejected_with_a_sentence():
    with pytest.raises(ConfigError, match="num_heads"):
        resolve_config("caption-transformer", overrides=["model.num_heads=7"])
    with pytest.raises(ConfigError, match="ImageNet weights exist for EfficientNet-B0 only"):
        resolve_config("caption-rnn", overrides=["model.encoder_width_mult=0.5"])


def test_preset_overlay_and_overrides_apply_in_order():
    config = resolve_config("caption-rnn", "tiny", overrides=["train.epochs=2", "data.max_length=9"], seed=7)
    assert isinstance(config, CaptionConfig)
    assert (config.preset, config.seed, config.train.epochs, config.data.max_length) == ("tiny", 7, 2.0, 9)
    assert config.data.source == "synthetic" and config.model.arch == "rnn"
    full = resolve_config("caption-rnn")
    assert full.data.source == "flickr8k" and full.model.encoder_weights == "imagenet"


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="has no preset 'huge'; presets: full, tiny"):
        resolve_config("caption-rnn", "huge")


def test_parse_override_reads_values_as_yaml():
    assert parse_override("a.b=3") == {"a": {"b": 3}}
    assert parse_override("a=null") == {"a": None}
    assert parse_override("a=[1, 2]") == {"a": [1, 2]}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("novalue")


def test_every_field_has_a_docstring():
    rows = explain(CaptionConfig)
    missing = [key for key, _, doc in rows if not doc]
    assert not missing
    assert "Peak learning rate" in dict((k, d) for k, _, d in rows)["train.learning_rate"]
    assert field_docs(CaptionConfig)["seed"].startswith("Seeds")


def test_yaml_syntax_errors_name_file_line_and_column(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: caption-rnn\ntrain:\n  epochs: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{bad}:\d+:\d+: invalid YAML"):
        validate_file(bad)


def test_round_trip_of_a_resolved_config(tmp_path: Path):
    from dlhw.config import dump_yaml, to_dict

    config = resolve_config("caption-attention", "tiny")
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(to_dict(config)), encoding="utf-8")
    assert validate_file(path) == ["caption-attention [tiny]"]
    assert resolve_config(config_file=path, preset="tiny") == config
    assert from_dict(CaptionConfig, to_dict(config)) == config
