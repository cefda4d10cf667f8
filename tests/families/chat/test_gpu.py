"""The chat family's k-bit path on CUDA: LoRA over a 4-bit NF4 (QLoRA) and an 8-bit base trains
(skipped without CUDA and bitsandbytes)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


@pytest.mark.gpu
@pytest.mark.parametrize("quantization", ["nf4", "int8"])
def test_lora_over_a_kbit_base_trains_on_cuda(tmp_path, quantization, record_property):
    pytest.importorskip("bitsandbytes")
    from dlhw.core.registry import resolve_config
    from dlhw.families.chat.base import tiny_base

    # the tiny base given by path goes through the Hub loader, which is where k-bit loading happens
    base = tiny_base(resolve_config("chat-lora", "tiny", None, [], None).model.tiny)
    run = tmp_path / quantization
    code, out = run_cli("train", "chat-lora", "--preset", "tiny", "--set", f"model.name={base}",
                        "--set", f"model.quantization={quantization}", "--set", "train.device=cuda",
                        "--set", "train.max_steps=30", "--set", "train.eval_strategy=steps",
                        "--set", "train.eval_steps=10", "--set", "train.eval_on_start=true",
                        "--output-dir", str(run))
    assert code == 0, out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["eval_loss"] for r in records if "eval_loss" in r]
    summary = json.loads((run / "train_summary.json").read_text(encoding="utf-8"))
    record_property("eval_loss_start", round(losses[0], 4))
    record_property("eval_loss_end", round(losses[-1], 4))
    record_property("trainable_parameters", summary["model"]["trainable_parameters"])
    assert losses[-1] < losses[0] * 0.9, losses  # the adapters learn over the quantized base
    check = summary["frozen_check"]
    assert check["changed"] == check["trainable_tensors"] > 0
