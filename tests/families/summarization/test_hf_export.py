"""``dlhw export RUN --hf`` on summarization runs: SFT as trained, LoRA merged; both load with
``AutoModelForCausalLM`` and summarize with the run's greedy tokens (the export checks it on test documents)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("name", "form"), [("sft", "model"), ("lora", "merged model")])
def test_summarization_runs_export_a_plain_causal_lm_with_their_prompt_format(summarization_runs, tmp_path, name,
                                                                              form):
    from transformers import AutoModelForCausalLM

    run = summarization_runs[name]
    out = tmp_path / name
    code, log = run_cli("export", str(run), "--hf", "--out", str(out))
    assert code == 0, log
    assert f"exported to {out}: {form} for transformers" in log
    assert "greedy tokens of the reloaded folder equal the run's on 5 test documents" in log
    assert AutoModelForCausalLM.from_pretrained(out, local_files_only=True).config.model_type == "llama"
    assert json.loads((out / "summarize.json").read_text()) == json.loads((run / "model" / "summarize.json").read_text())
    assert not (out / "adapter_config.json").exists()
