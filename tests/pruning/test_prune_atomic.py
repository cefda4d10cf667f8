"""`dlhw prune RUN` killed at any point leaves no run at its target, and the same prune then succeeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

# (point, whether the killed prune left its partial folder: it is made once the model is pruned)
POINTS = [("prune-loaded", False), ("prune-pruned", False), ("prune-saved", True)]


def _killed_prune(parent: Path, target: Path, point: str) -> int:
    """Run `dlhw prune PARENT --output-dir TARGET` until ``kill-at:point`` kills it; return its PID."""
    env = {**os.environ, "DLHW_FAULT": f"kill-at:{point}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dlhw", "prune", str(parent), "--amount", "0.3",
                             "--output-dir", str(target)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == -9, out[-3000:]
    return proc.pid


@pytest.mark.slow
def test_a_prune_killed_at_any_point_leaves_no_run_and_the_same_prune_then_succeeds(ner_run, tmp_path):
    target = tmp_path / "pruned"
    for point, partial in POINTS:
        pid = _killed_prune(ner_run, target, point)
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted([".pruned.lock", *([f".pruned.partial-{pid}"] if partial else [])]), point
        if partial:  # whole but hidden: the rename is the last step
            held = tmp_path / f".pruned.partial-{pid}"
            assert {"sparsity.json", "report.md", "config.yaml"} <= {p.name for p in held.iterdir()}

    code, log = run_cli("prune", str(ner_run), "--amount", "0.3", "--output-dir", str(target))
    assert code == 0, log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pruned"]  # the partial folder and the lock gone
    summary = json.loads((target / "sparsity.json").read_text(encoding="utf-8"))
    assert summary["parent"] == str(ner_run.resolve()) and summary["amount"] == 0.3
    assert summary["pruned_modules"]["sparsity"] == pytest.approx(0.3, abs=0.01)
    report = (target / "report.md").read_text(encoding="utf-8")
    assert f"Run directory: `{target}`" in report and ".partial-" not in report
    assert not (target / "eval.json").exists() and not (target / "checkpoints").exists()

    code, log = run_cli("evaluate", str(target))
    assert code == 0, log
    metrics = json.loads((target / "eval.json").read_text(encoding="utf-8"))["metrics"]
    dense = json.loads((ner_run / "eval.json").read_text(encoding="utf-8"))["metrics"]
    assert set(metrics) == set(dense) and metrics != dense  # the pruned weights are the ones scored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pruned"]
