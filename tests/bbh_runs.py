"""The prompting tests' shared tiny prompt run: made once per test session, read by every module.

Test modules import the fixture (``from tests.bbh_runs import bbh_run``); the tiny T5 is pretrained
once per session through the cache (``DLHW_CACHE_DIR`` points into the session's temporary folder).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

_CACHE: dict[str, Path] = {}
SAMPLES = 5
"""Self-consistency chains per item in the shared run (the full 250 items are scored)."""


@pytest.fixture(scope="session")
def bbh_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dlhw prompt bbh-sports --preset tiny` with every strategy on the 250 held-out statements."""
    if "run" not in _CACHE:
        run_dir = tmp_path_factory.mktemp("bbh-run") / "bbh"
        code, out = run_cli("prompt", "bbh-sports", "--preset", "tiny", "--samples", str(SAMPLES),
                            "--output-dir", str(run_dir))
        assert code == 0, out
        (run_dir / "prompt_output.txt").write_text(out, encoding="utf-8")
        _CACHE["run"] = run_dir
    return _CACHE["run"]
