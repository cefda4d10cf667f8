"""``dlhw export RUN --hf`` on a prompt run: the prompted seq2seq model as it is, with its card."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_a_prompt_run_exports_its_seq2seq_model_with_the_strategies_accuracies(bbh_run, tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    out = tmp_path / "hf"
    code, log = run_cli("export", str(bbh_run), "--hf", "--out", str(out))
    assert code == 0, log
    assert "greedy tokens of the reloaded folder equal the run's on 6 check prompts" in log
    assert AutoModelForSeq2SeqLM.from_pretrained(out, local_files_only=True).config.model_type == "t5"
    meta = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert meta["pipeline_tag"] == "text2text-generation" and meta["dlhw"]["method"] == "none (prompted as is)"
    assert "accuracy_cot" in {m["type"] for m in meta["model-index"][0]["results"][0]["metrics"]}
