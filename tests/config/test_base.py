"""``train.report_to`` and ``train.trainer_args``: checked when the config resolves, before any work."""

from __future__ import annotations

import pytest

from dlhw.config import TrainConfig, from_dict
from dlhw.core.registry import resolve_config
from dlhw.errors import ConfigError
from tests.conftest import run_cli


def test_trainer_args_pass_any_trainingarguments_field_through_a_dotted_set():
    config = resolve_config("chat-lora", "tiny", overrides=["train.trainer_args.optim=adafactor",
                                                            "train.trainer_args.adam_beta2=0.98"])
    assert config.train.trainer_args == {"optim": "adafactor", "adam_beta2": 0.98}
    assert config.train.report_to == "auto"


def test_trainer_args_of_a_subclass_of_trainingarguments_are_accepted():
    # SFTConfig (summarize-sft) and Seq2SeqTrainingArguments (tts) have fields TrainingArguments lacks
    assert TrainConfig(trainer_args={"packing": True, "predict_with_generate": True}).trainer_args["packing"]


def test_a_misspelt_trainer_arg_names_the_nearest_field():
    with pytest.raises(ConfigError, match=r"^train\.trainer_args\.optimm: not a TrainingArguments field; "
                                          r"did you mean optim\?$"):
        resolve_config("chat-lora", "tiny", overrides=["train.trainer_args.optimm=x"])


def test_a_trainer_arg_dlhw_sets_from_the_train_section_names_that_key():
    with pytest.raises(ConfigError, match=r"^train\.trainer_args\.num_train_epochs: dlhw sets it from train\.epochs"):
        resolve_config("ner", "tiny", overrides=["train.trainer_args.num_train_epochs=3"])


def test_trainer_args_must_be_a_mapping_and_yaml_tags_stay_refused():
    with pytest.raises(ConfigError, match=r"^train\.trainer_args: expected a mapping, got 5"):
        resolve_config("ner", "tiny", overrides=["train.trainer_args=5"])
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_config("ner", "tiny", overrides=["train.trainer_args.optim=!!python/name:os.system"])


def test_report_to_takes_what_hf_accepts_and_names_the_nearest_integration():
    assert TrainConfig(report_to=["tensorboard", "mlflow"]).report_to == ["tensorboard", "mlflow"]
    assert from_dict(TrainConfig, {"report_to": "none"}).report_to == "none"
    with pytest.raises(ConfigError, match=r"^train\.report_to: 'tensorbord' is not an integration HF knows; "
                                          r"did you mean tensorboard\?"):
        TrainConfig(report_to="tensorbord")
    with pytest.raises(ConfigError, match="contradict"):
        TrainConfig(report_to="auto,none")


def test_train_exits_2_naming_optim_before_it_makes_a_run_directory(tmp_path):
    run = tmp_path / "run"
    code, out = run_cli("train", "chat-lora", "--preset", "tiny", "--set", "train.trainer_args.optimm=x",
                        "--output-dir", str(run))
    assert code == 2
    assert out.endswith("error: train.trainer_args.optimm: not a TrainingArguments field; did you mean optim?")
    assert not run.exists()
