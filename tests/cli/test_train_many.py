"""``dlhw train RECIPE RECIPE ... --output-dir DIR``: each run into DIR/RECIPE, then their
``report compare`` into DIR; options that take one recipe are refused before anything trains."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(("flags", "message"), [
    (("--resume",), "--resume takes one recipe"),
    (("--nnodes", "2", "--rdzv-endpoint", "h:1"), "--nnodes takes one recipe"),
])
def test_options_of_one_run_are_refused_with_several_recipes(tmp_path, flags, message):
    code, out = run_cli("train", "chat-lora", "chat-partial", "--preset", "tiny", "--output-dir", str(tmp_path / "x"),
                        *flags)
    assert code == 2
    assert message in out
    assert not (tmp_path / "x").exists()


def test_every_recipe_is_checked_before_the_first_run(tmp_path):
    code, out = run_cli("train", "chat-lora", "bbh-sports", "--preset", "tiny", "--output-dir", str(tmp_path / "x"))
    assert code == 2
    assert "recipe bbh-sports: the prompting family trains nothing" in out
    assert not (tmp_path / "x").exists()
    code, out = run_cli("train", "chat-lora", "chat-lora", "--preset", "tiny", "--output-dir", str(tmp_path / "x"))
    assert code == 2 and "a recipe is named twice" in out


def test_a_non_empty_run_of_one_recipe_is_refused_before_any_trains(tmp_path):
    (tmp_path / "x" / "chat-partial").mkdir(parents=True)
    (tmp_path / "x" / "chat-partial" / "config.yaml").write_text("recipe: chat-partial\n", encoding="utf-8")
    code, out = run_cli("train", "chat-lora", "chat-partial", "--preset", "tiny", "--output-dir", str(tmp_path / "x"))
    assert code == 2
    assert "chat-partial: not empty; pass --overwrite" in out
    assert not (tmp_path / "x" / "chat-lora").exists()


@pytest.mark.slow
def test_two_recipes_train_one_after_another_and_are_compared_quietly(tmp_path):
    out_dir = tmp_path / "methods"
    proc = subprocess.run(
        [sys.executable, "-m", "dlhw", "-q", "train", "chat-prompt-tuning", "chat-lora", "--preset", "tiny",
         "--output-dir", str(out_dir), "--set", "train.max_steps=2", "--set", "train.eval_steps=2"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[:6] == [
        "[1/2] chat-prompt-tuning", f"run directory: {out_dir / 'chat-prompt-tuning'}",
        f"done: model in {out_dir / 'chat-prompt-tuning' / 'model'}, report in {out_dir / 'chat-prompt-tuning' / 'report.md'}",
        "[2/2] chat-lora", f"run directory: {out_dir / 'chat-lora'}",
        f"done: model in {out_dir / 'chat-lora' / 'model'}, report in {out_dir / 'chat-lora' / 'report.md'}",
    ]
    assert lines[6] == "# Comparison of runs"
    assert lines[-1] == f"wrote {out_dir / 'compare.md'}, {out_dir / 'compare.json'} and {out_dir / 'plots'}/"
    # -q: no progress (log lines, bars) on stderr; only warnings may come
    assert not [ln for ln in proc.stderr.splitlines() if ln.startswith(("step ", "eval step", "conversations:"))
                or "it/s]" in ln], proc.stderr[-3000:]
    for recipe in ("chat-prompt-tuning", "chat-lora"):
        assert (out_dir / recipe / "model").is_dir() and (out_dir / recipe / "eval.json").is_file()
    compared = json.loads((out_dir / "compare.json").read_text(encoding="utf-8"))
    text = json.dumps(compared)
    assert "chat-prompt-tuning" in text and "chat-lora" in text
    table = (out_dir / "compare.md").read_text(encoding="utf-8")
    first = next(part for part in table.split("\n\n") if part.startswith("| method |")).splitlines()
    assert [row.split(" | ")[0] for row in first[2:]] == ["| prompt-tuning", "| lora"]
    assert (out_dir / "plots" / "loss_overlay.png").is_file()
