"""The ``--hf`` model card: YAML metadata the Hub reads (base model, datasets, method, hyper-parameters,
eval.json's metrics) and the text a reader needs (use, check, intended use and limits)."""

from __future__ import annotations

import json

import yaml

from dlhw.config import dump_yaml, to_dict
from dlhw.core.family import HfExport
from dlhw.core.model_card import read_card_metadata, write_model_card
from dlhw.core.registry import FAMILIES, resolve_config

EXPORT = HfExport(form="merged model", library="transformers", pipeline_tag="text-generation",
                  base_model="google/gemma-2-2b-it", method="dora", load="model = 1",
                  check="greedy tokens equal on 5 prompts", limits=("a limit",))


def _run(tmp_path, metrics: dict | None):
    run = tmp_path / "run"
    run.mkdir()
    config = resolve_config("chat-lora", overrides=["method.variant=dora", "train.trainer_args.optim=adafactor"])
    (run / "config.yaml").write_text(dump_yaml(to_dict(config)), encoding="utf-8")
    if metrics is not None:
        (run / "eval.json").write_text(json.dumps({"split": "test", "metrics": metrics}), encoding="utf-8")
    return run


def test_card_metadata_parses_as_yaml_and_names_the_metrics(tmp_path):
    run = _run(tmp_path, {"perplexity": 3.25, "exact_match": 0.5, "loss": 1.18, "note": "text is left out"})
    card = write_model_card(tmp_path, FAMILIES["chat"], run, EXPORT, ["universitytehran/SlimOrca"])
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n") and card.name == "README.md"
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta == read_card_metadata(card)
    assert meta["base_model"] == "google/gemma-2-2b-it" and meta["datasets"] == ["universitytehran/SlimOrca"]
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert meta["dlhw"]["metrics"] == {"perplexity": 3.25, "exact_match": 0.5, "loss": 1.18}
    results = meta["model-index"][0]["results"][0]
    assert {m["type"]: (m["value"], m["name"]) for m in results["metrics"]} == {
        "perplexity": (3.25, "test perplexity"), "exact_match": (0.5, "exact match"), "loss": (1.18, "loss")}
    hyper = meta["dlhw"]["hyperparameters"]
    assert hyper["learning_rate"] == 2e-4 and hyper["trainer_args"] == {"optim": "adafactor"}
    assert hyper["method"]["variant"] == "dora" and meta["dlhw"]["method"] == "dora"
    body = text.split("---\n", 2)[2]
    for part in ("## Use", "model = 1", "Export check: greedy tokens equal on 5 prompts", "## Intended use and limits",
                 "- a limit", "| test perplexity (`perplexity`) | 3.25 |"):
        assert part in body


def test_a_run_without_eval_json_gets_a_card_that_says_so(tmp_path):
    card = write_model_card(tmp_path, FAMILIES["chat"], _run(tmp_path, None), EXPORT, [])
    meta = read_card_metadata(card)
    assert "model-index" not in meta and "datasets" not in meta and meta["dlhw"]["metrics"] == {}
    assert "The run has no `eval.json`" in card.read_text(encoding="utf-8")
