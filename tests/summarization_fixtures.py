"""Tiny summarization runs shared by every summarization test module, trained once per session.

A module-level registry (not a conftest fixture, so the shared conftest stays untouched): the first
test that asks for a run trains it under a session temporary directory; later tests, in any module,
reuse it. Prompt runs reuse the tiny base the trained runs built (``DLHW_CACHE_DIR`` is per session).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

RUNS: dict[str, tuple[str, ...]] = {
    "sft": ("train", "summarize-sft", "--preset", "tiny"),
    "lora": ("train", "summarize-lora", "--preset", "tiny"),
    "zero-shot": ("prompt", "summarize", "--preset", "tiny", "--shots", "0"),
    "3-shot": ("prompt", "summarize", "--preset", "tiny", "--shots", "3"),
}
_made: dict[str, Path] = {}
_root: list[Path] = []


def summarization_run(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run ``name`` of :data:`RUNS`, made on first use."""
    if name in _made:
        return _made[name]
    if not _root:
        _root.append(tmp_path_factory.mktemp("summarization-runs"))
    run_dir = _root[0] / name
    code, out = run_cli(*RUNS[name], "--output-dir", str(run_dir))
    assert code == 0, out
    _made[name] = run_dir
    return run_dir
