"""The import contracts (import-linter, in `make lint`) hold, and catch what they forbid: an upward
import between layers, and one family package importing another."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _lint(root: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.is_file():
        pytest.skip("import-linter is not installed (pip install 'dlhw[test]')")
    return subprocess.run([str(lint), "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def _copy_with(tmp_path: Path, module: str, planted: str) -> Path:
    shutil.copytree(ROOT / "dlhw", tmp_path / "dlhw", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "dlhw" / module
    target.write_text(target.read_text() + "\n\n" + planted + "\n")
    return tmp_path


def test_both_contracts_are_kept():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Layers only point down" in proc.stdout and "Families are independent" in proc.stdout
    assert "2 kept, 0 broken" in proc.stdout


def test_a_planted_upward_import_breaks_the_layers(tmp_path):
    root = _copy_with(tmp_path, "lm/peft.py",
                      "def _upward():\n    from dlhw.engine.trainer import run_training\n    return run_training")
    proc = _lint(root)
    assert proc.returncode == 1
    assert "BROKEN" in proc.stdout and "dlhw.lm.peft -> dlhw.engine.trainer" in proc.stdout


def test_a_family_importing_another_breaks_independence(tmp_path):
    root = _copy_with(tmp_path, "families/summarization/model.py", "import dlhw.families.chat  # noqa: E402,F401")
    proc = _lint(root)
    assert proc.returncode == 1
    assert "Families are independent" in proc.stdout
    assert "dlhw.families.summarization is not allowed to import dlhw.families.chat" in proc.stdout
    assert "dlhw.families.summarization.model -> dlhw.families.chat" in proc.stdout
