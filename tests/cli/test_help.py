"""Every command answers --help, and user errors exit with the documented codes."""

from __future__ import annotations

import subprocess
import sys
import time

import click
import pytest

from dlhw.cli import COMMANDS, cli
from dlhw.core.registry import FAMILIES
from tests.conftest import run_cli


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, walking lazily loaded groups (``prompt``) through list/get_command."""
    ctx = click.Context(group)
    found = [prefix]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join((*prefix, name))}: listed but not found"
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


ALL = _all_commands(cli)
SHARED = {"recipes", "config", "train", "evaluate", "export", "prompt", "prune", "model", "data", "download", "report",
          "env"}


def test_the_cli_offers_the_shared_verbs_and_each_family_s_batch_verb_and_prompt_tasks():
    batch_verbs = {f.batch_verb for f in FAMILIES.values() if f.batch_verb}
    assert batch_verbs == {"caption", "chat", "ner", "summarize", "tts"}
    assert set(COMMANDS) == SHARED | batch_verbs
    assert {path[0] for path in ALL if path} == SHARED | batch_verbs
    tasks = {task for f in FAMILIES.values() for task in f.prompt_tasks}
    assert {path[1] for path in ALL if len(path) == 2 and path[0] == "prompt"} == tasks == {"bbh-sports", "summarize"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "dlhw")
def test_help(path: tuple[str, ...]):
    code, out = run_cli(*path, "--help")
    assert code == 0
    assert "Usage: " in out and "--help" in out
    command: click.Command = cli
    for name in path:
        command = command.get_command(click.Context(command), name)  # type: ignore[attr-defined]
    first_line = (command.help or "").strip().splitlines()[0]
    assert first_line.split(":")[0][:30] in out


def test_recipes_lists_name_family_and_presets():
    code, out = run_cli("recipes")
    assert code == 0
    for name in ("caption-rnn", "caption-attention", "caption-transformer"):
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert "caption" in line and "full,tiny" in line


def test_config_show_prints_the_resolved_yaml():
    code, out = run_cli("config", "show", "caption-rnn", "--preset", "tiny", "--set", "train.epochs=4")
    assert code == 0
    assert "preset: tiny" in out and "epochs: 4.0" in out and "source: synthetic" in out


def _dlhw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlhw", *args], capture_output=True, text=True, timeout=120)


def test_config_validate_rejects_a_bad_file_with_exit_2(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("recipe: caption-rnn\nmodel:\n  hiden_dim: 3\n", encoding="utf-8")
    proc = _dlhw("config", "validate", str(bad))
    assert proc.returncode == 2
    assert "model.hiden_dim: unknown key" in proc.stderr


def test_unknown_recipe_exits_2_and_lists_recipes():
    proc = _dlhw("train", "caption-gru")
    assert proc.returncode == 2
    assert "unknown recipe 'caption-gru'" in proc.stderr and "caption-rnn" in proc.stderr


def test_full_preset_offline_fails_fast_naming_the_ways_out(tmp_path):
    start = time.perf_counter()
    proc = _dlhw("train", "caption-rnn", "--output-dir", str(tmp_path / "run"))
    elapsed = time.perf_counter() - start
    assert proc.returncode == 1, proc.stderr
    assert "--data-dir" in proc.stderr and "--preset tiny" in proc.stderr
    assert elapsed < 60
    assert "Traceback" not in proc.stderr


def test_train_refuses_a_non_empty_output_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    proc = _dlhw("train", "caption-rnn", "--preset", "tiny", "--output-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "not empty" in proc.stderr and "--resume" in proc.stderr and "--overwrite" in proc.stderr
    assert (tmp_path / "keep.txt").exists()
