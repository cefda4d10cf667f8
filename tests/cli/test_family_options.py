"""Shared commands take the options the run's family declares, and nothing else (exit 2)."""

from __future__ import annotations

import json

import pytest

from dlhw.backends.tensorrt import tensorrt_missing
from dlhw.config import dump_yaml, to_dict
from dlhw.core.registry import resolve_config
from tests.conftest import run_cli


def _run_dir(tmp_path, recipe: str):
    """A run directory as far as the option checks look: config.yaml and a model marker."""
    run = tmp_path / recipe
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_yaml(to_dict(resolve_config(recipe, "tiny"))), encoding="utf-8")
    (run / "model" / ("adapter_config.json" if recipe.startswith("chat") else "config.json")).write_text("{}")
    return run


def test_evaluate_refuses_an_option_the_chat_family_does_not_take(tmp_path):
    code, out = run_cli("evaluate", str(_run_dir(tmp_path, "chat-lora")), "--beam-size", "3")
    assert code == 2
    assert "--beam-size: not an option of `dlhw evaluate` for the chat family; it takes --batch-size, --device" in out


@pytest.mark.parametrize("args", [["--split", "val"], ["--backend", "onnxruntime"]])
def test_evaluate_refuses_every_undeclared_option(tmp_path, args):
    code, out = run_cli("evaluate", str(_run_dir(tmp_path, "chat-partial")), *args)
    assert code == 2 and f"{args[0]}: not an option" in out


def test_export_int8_is_refused_for_a_family_without_an_int8_export(tmp_path):
    code, out = run_cli("export", str(_run_dir(tmp_path, "caption-rnn")), "--onnx", "--int8")
    assert code == 2
    assert "--int8: the caption family has no int8 export" in out


@pytest.mark.skipif(not tensorrt_missing(), reason="TensorRT can run here")
@pytest.mark.parametrize("recipe", ["tts", "bbh-sports"])
def test_export_tensorrt_without_a_gpu_exits_2_before_anything_is_exported(tmp_path, recipe):
    """Where TensorRT cannot run, the request stops before the model loads: exit 2, one line, no export folder."""
    import subprocess
    import sys

    run = _run_dir(tmp_path, recipe)
    proc = subprocess.run([sys.executable, "-m", "dlhw", "export", str(run), "--onnx", "--tensorrt"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: TensorRT is not available on this machine: it needs an NVIDIA GPU with CUDA")
    assert line.endswith("Use --backend onnxruntime instead, or run on a CUDA machine (the dlhw Docker image has "
                         "all of it).")
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "model"]


def test_export_help_lists_tensorrt_for_every_family_with_an_export():
    from dlhw.core.registry import FAMILIES

    code, out = run_cli("export", "--help")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and len(line.split()) > 1}
    exporting = [name for name, family in FAMILIES.items() if family.export is not None]
    assert {"caption", "chat", "ner", "summarization", "tts", "prompting"} <= set(exporting)
    assert all("--tensorrt" in rows[name] and "--fp16" in rows[name] for name in exporting)


def test_data_inspect_offers_the_families_that_declare_it():
    from dlhw.core.registry import FAMILIES

    inspectable = [name for name, family in FAMILIES.items() if family.inspect]
    assert "caption" in inspectable and "chat" not in inspectable
    code, out = run_cli("data", "inspect", "chat")
    assert code == 2 and "'chat' is not one of " + ", ".join(repr(n) for n in inspectable) in out


@pytest.mark.slow
def test_train_chat_with_data_dir_trains_on_the_local_conversation_files(tmp_path):
    from dlhw.families.chat.persian_tasks import make_examples

    data = tmp_path / "conversations"
    data.mkdir()
    examples = make_examples(90, seed=31)
    (data / "a.jsonl").write_text("".join(json.dumps({"messages": e.messages()}, ensure_ascii=False) + "\n"
                                          for e in examples[:60]), encoding="utf-8")
    (data / "b.json").write_text(json.dumps([{"conversations": [
        {"from": "human", "value": e.question}, {"from": "gpt", "value": e.answer}]} for e in examples[60:]],
        ensure_ascii=False), encoding="utf-8")
    run = tmp_path / "run"
    code, out = run_cli("train", "chat-lora", "--preset", "tiny", "--data-dir", str(data), "--output-dir", str(run),
                        "--set", "data.val_examples=10", "--set", "data.test_examples=10",
                        "--set", "train.epochs=2", "--set", "eval.exact_match_examples=8")
    assert code == 0, out
    summary = json.loads((run / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["data"]["source"] == str(data)
    assert (summary["data"]["train"], summary["data"]["val"], summary["data"]["test"]) == (70, 10, 10)
    assert "source: local" in (run / "config.yaml").read_text() and str(data) in (run / "config.yaml").read_text()
    losses = [json.loads(line)["eval_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if "eval_loss" in line]
    assert losses[-1] < losses[0]
