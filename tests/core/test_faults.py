"""The fault-injection setting kill-and-resume tests use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dlhw.core.faults import fault_point
from dlhw.errors import ConfigError


def test_fault_point_reads_its_own_kind_only(monkeypatch):
    monkeypatch.setenv("DLHW_FAULT", "kill-after-step:12")
    assert fault_point("kill-after-step") == 12
    assert fault_point("kill-after-batch") is None
    monkeypatch.delenv("DLHW_FAULT")
    assert fault_point("kill-after-step") is None


@pytest.mark.parametrize("value", ["kill-after-step", "kill-after-step:x", "explode:3"])
def test_a_malformed_fault_is_a_usage_error(monkeypatch, value):
    monkeypatch.setenv("DLHW_FAULT", value)
    with pytest.raises(ConfigError, match="DLHW_FAULT.*expected one of kill-after-step:N, kill-after-batch:N"):
        fault_point("kill-after-step")


def test_the_batch_runner_dies_right_after_the_nth_batch(tmp_path):
    script = f"""
import json
from pathlib import Path
from dlhw.batch.runner import ResultWriter, run_batch_job
writer = ResultWriter(Path({str(tmp_path / 'out.jsonl')!r}), "value")
run_batch_job(list(range(10)), lambda i: i, lambda b: [{{"value": v}} for v in b], writer, batch_size=3)
print("finished")
"""
    import os

    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DLHW_FAULT": "kill-after-batch:2"})
    assert proc.returncode == -9 and "finished" not in proc.stdout
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [int(__import__("json").loads(line)["path"]) for line in lines] == list(range(6))
