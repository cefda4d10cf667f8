"""The tiny tts run, trained once per test session and shared by every tts test module.

Each module imports :func:`tts_run`; the trained directory is kept in a module-level dict, so the
run is made once even though every importing module registers the fixture again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def tts_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dlhw train tts --preset tiny``, then ``dlhw export RUN --onnx``: the run directory."""
    if "tiny" not in _RUNS:
        run_dir = tmp_path_factory.mktemp("tts-runs") / "tts"
        code, out = run_cli("train", "tts", "--preset", "tiny", "--output-dir", str(run_dir))
        assert code == 0, out
        code, out = run_cli("export", str(run_dir), "--onnx")
        assert code == 0, out
        _RUNS["tiny"] = run_dir
    return _RUNS["tiny"]
