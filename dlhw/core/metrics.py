"""Reading JSON-lines files: a run's ``metrics.jsonl`` (one record per log event), probes, predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlhw.core.jsonl import split_records
from dlhw.core.runs import METRICS_FILE


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a JSON-lines file; ``[]`` when there is none yet (lines split on ``\\n`` only:
    :mod:`dlhw.core.jsonl`)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in split_records(path.read_text(encoding="utf-8"))]


def read_metrics(run_dir_or_file: str | Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (given the file, or the run directory holding it)."""
    path = Path(run_dir_or_file)
    return read_jsonl(path / METRICS_FILE if path.is_dir() else path)
