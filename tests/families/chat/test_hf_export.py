"""``dlhw export RUN --hf`` on chat runs: a LoRA run becomes a merged transformers model that
``AutoModelForCausalLM.from_pretrained`` loads offline and that answers with the run's greedy tokens; a
soft prompt becomes a PEFT adapter folder over its base. Both carry a model card with YAML metadata. The
session's chat runs train with the default ``train.report_to``: their TensorBoard files hold the losses."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import run_cli

pytestmark = pytest.mark.slow
PROMPTS = 5


def _run_tokens(run_dir) -> tuple[list[list[int]], list[list[int]]]:
    """The check prompts' ids and the run's greedy answers, the way `dlhw chat` decodes (torch, CPU, fp32)."""
    from dlhw.families.chat.export import PARITY_NEW_TOKENS, parity_prompts
    from dlhw.lm.generate import ChatGenerator
    from dlhw.lm.run import load_chat_run

    loaded = load_chat_run(run_dir, "cpu", dtype="fp32")
    generator = ChatGenerator(loaded.model, loaded.tokenizer, PARITY_NEW_TOKENS, loaded.config.data.max_length)
    ids = [generator.prompt_ids(c) for c in parity_prompts(loaded)[-PROMPTS:]]  # other prompts than the export's
    return ids, [g.token_ids for g in generator.generate_ids(ids)]


def _tokens(model, tokenizer, ids: list[list[int]]) -> list[list[int]]:
    from dlhw.families.chat.export import PARITY_NEW_TOKENS
    from dlhw.lm.generate import ChatGenerator

    return [g.token_ids for g in ChatGenerator(model.eval(), tokenizer, PARITY_NEW_TOKENS).generate_ids(ids)]


def _card(folder) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_a_lora_run_exports_a_merged_model_with_the_run_s_greedy_tokens(chat_runs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = chat_runs["lora"]
    out = tmp_path / "hf"
    code, log = run_cli("export", str(run), "--hf", "--out", str(out))
    assert code == 0, log
    assert "merged model for transformers" in log and "greedy tokens of the reloaded folder equal the run's on 12 Persian chat prompts" in log
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "README.md"} <= files
    assert not any(name.startswith("adapter_") for name in files)  # merged: nothing for peft to load
    ids, expected = _run_tokens(run)
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    assert type(model).__name__ == "LlamaForCausalLM"
    got = _tokens(model, AutoTokenizer.from_pretrained(out, local_files_only=True), ids)
    assert got == expected and sum(map(len, got)) >= PROMPTS  # not all empty answers

    meta = _card(out)
    evaluation = json.loads((run / "eval.json").read_text(encoding="utf-8"))["metrics"]
    numbers = {k: v for k, v in evaluation.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    assert meta["dlhw"]["metrics"] == pytest.approx(numbers) and {"perplexity", "exact_match"} <= set(numbers)
    names = {m["type"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert names == set(numbers)
    assert meta["library_name"] == "transformers" and meta["dlhw"]["form"] == "merged model"
    assert meta["dlhw"]["method"] == "lora" and meta["dlhw"]["hyperparameters"]["method"]["r"] == 8
    assert "base_model" not in meta  # the tiny base is not on the Hub, and the card does not pretend


def test_a_soft_prompt_exports_a_peft_adapter_over_its_base(chat_runs, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = chat_runs["prompt-tuning"]
    out = tmp_path / "hf"
    code, log = run_cli("export", str(run), "--hf", "--out", str(out))
    assert code == 0, log
    assert "PEFT adapter for peft" in log
    adapter = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["peft_type"] == "PROMPT_TUNING" and adapter["base_model_name_or_path"] == "base_model"
    assert (out / "base_model" / "model.safetensors").is_file()  # the tiny base travels with it
    ids, expected = _run_tokens(run)
    base = AutoModelForCausalLM.from_pretrained(out / "base_model", local_files_only=True)
    got = _tokens(PeftModel.from_pretrained(base, out), AutoTokenizer.from_pretrained(out), ids)
    assert got == expected
    meta = _card(out)
    assert meta["library_name"] == "peft" and meta["dlhw"]["form"] == "PEFT adapter"
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "cannot be merged into the weights: this is a PEFT adapter folder" in text


def test_default_settings_write_tensorboard_events_with_train_and_eval_loss(chat_runs):
    pytest.importorskip("tensorboard")
    from tests.engine.test_trainer import _scalars

    run = chat_runs["lora"]
    scalars = _scalars(run / "tensorboard")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = {r["step"]: r["loss"] for r in records if "loss" in r}
    evals = {r["step"]: r["eval_loss"] for r in records if "eval_loss" in r}
    assert len(train) >= 3 and len(evals) >= 2
    assert dict(scalars["train/loss"]) == pytest.approx(train, rel=1e-6)
    assert dict(scalars["eval/loss"]) == pytest.approx(evals, rel=1e-6)
