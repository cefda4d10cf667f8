"""The layer contract (import-linter, in `make lint`) holds, and catches an upward import."""

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


def test_layers_only_point_down():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_a_planted_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "dlhw", tmp_path / "dlhw", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    peft = tmp_path / "dlhw" / "models" / "peft.py"
    peft.write_text(peft.read_text() + "\n\ndef _upward():\n    from dlhw.training.engine import run_training\n"
                    "    return run_training\n")
    proc = _lint(tmp_path)
    assert proc.returncode == 1
    assert "BROKEN" in proc.stdout and "dlhw.models.peft -> dlhw.training.engine" in proc.stdout
