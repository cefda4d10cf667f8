"""The NER tests' shared tiny run: trained once per test session, read by every NER test module.

Test modules import the fixtures (``from tests.ner_runs import ner_run``); the module-level cache
keeps it at one training and one export however many modules use them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

_CACHE: dict[str, Path] = {}


@pytest.fixture(scope="session")
def ner_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``ner`` run, trained and evaluated by `dlhw train ner --preset tiny`."""
    if "run" not in _CACHE:
        run_dir = tmp_path_factory.mktemp("ner-run") / "ner"
        code, out = run_cli("train", "ner", "--preset", "tiny", "--output-dir", str(run_dir))
        assert code == 0, out
        _CACHE["run"] = run_dir
    return _CACHE["run"]


@pytest.fixture(scope="session")
def ner_export(ner_run: Path) -> tuple[Path, str]:
    """The run's ONNX export with an int8 model (`dlhw export RUN --onnx --int8`), and its output."""
    if "export" not in _CACHE:
        code, out = run_cli("export", str(ner_run), "--onnx", "--int8")
        assert code == 0, out
        (ner_run / "export_output.txt").write_text(out, encoding="utf-8")
        _CACHE["export"] = ner_run / "export" / "onnx"
    return _CACHE["export"], (ner_run / "export_output.txt").read_text(encoding="utf-8")
