"""`dlhw export RUN --onnx` killed at every point keeps the run's export whole (:mod:`dlhw.backends.export`).

One tiny NER run (the family whose tiny export is the quickest) is exported once; then the export
is run again in a subprocess killed (SIGKILL, ``DLHW_FAULT``) at each point in turn. After every
kill the folder beside the export holds exactly what that point leaves, and the run's export still
opens on ONNX Runtime through the batch verb and tags a sentence as the first export did.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

SENTENCE = "Helen Adams flew from Lima to Quito on 3 May 2021 ."

POINTS: list[tuple[str, str]] = [
    # (DLHW_FAULT, what the export's folder holds after the kill besides the lock file:
    #  "final" the export in place, "partial" the new one being built, "partial+meta" with its export.json,
    #  "old" the previous export renamed away)
    ("kill-at:export-start", "final"),
    ("kill-at:export-loaded", "final partial"),
    ("kill-at:export-onnx-written", "final partial"),
    ("kill-at:export-parity-checked", "final partial"),
    ("kill-before-rename:export.json", "final partial"),
    ("kill-at:export-meta-written", "final partial+meta"),
    ("kill-at:export-swap-begin", "final partial+meta"),
    ("kill-at:export-swap-old-moved", "partial+meta old"),
    ("kill-at:export-swap-new-in-place", "final old"),
    ("kill-at:export-swap-done", "final"),
]


def _killed_export(run: Path, fault: str) -> int:
    """Run `dlhw export RUN --onnx` until ``fault`` kills it; return its PID."""
    env = {**os.environ, "DLHW_FAULT": fault, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dlhw", "export", str(run), "--onnx"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == -9, out[-3000:]
    return proc.pid


def _beside(run: Path, pid: int, expected: str) -> dict[str, bool]:
    """The names ``expected`` describes, with whether each holds export.json."""
    names = {"final": ("onnx", True), "partial": (f".onnx.partial-{pid}", False),
             "partial+meta": (f".onnx.partial-{pid}", True), "old": (f".onnx.old-{pid}", True)}
    return {names[part][0]: names[part][1] for part in expected.split()}


def _tagged(run: Path, out: Path) -> dict:
    """The record of the batch verb tagging SENTENCE with the run's export on ONNX Runtime."""
    source = out.with_suffix(".txt")
    source.write_text(SENTENCE + "\n", encoding="utf-8")
    code, log = run_cli("ner", str(source), "--model", str(run), "--backend", "onnxruntime", "--out", str(out))
    assert code == 0, log
    (record,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return record


@pytest.mark.slow
def test_an_export_killed_at_any_point_leaves_the_previous_export_loadable(ner_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(ner_run, run, ignore=lambda d, names: [n for n in names if Path(d) == ner_run
                                                            and n in ("checkpoints", "export")])
    code, log = run_cli("export", str(run), "--onnx")
    assert code == 0, log
    export = run / "export"
    first = _tagged(run, tmp_path / "first.jsonl")
    assert first["status"] == "ok" and first["tokens"] == SENTENCE.split() and first["entities"]
    meta = json.loads((export / "onnx" / "export.json").read_text(encoding="utf-8"))

    for i, (fault, expected) in enumerate(POINTS):
        pid = _killed_export(run, fault)
        held = _beside(run, pid, expected)
        assert sorted(p.name for p in export.iterdir()) == sorted([*held, ".onnx.lock"]), fault
        assert (export / ".onnx.lock").read_text().split()[0] == str(pid)  # the killed holder's
        for name, complete in held.items():
            assert (export / name / "export.json").is_file() == complete, (fault, name)  # written last
        record = _tagged(run, tmp_path / f"after-{i}.jsonl")
        assert record["status"] == "ok" and record["tags"] == first["tags"], fault
        assert json.loads((export / "onnx" / "export.json").read_text(encoding="utf-8"))["files"] == meta["files"]

    # killed between the renames again; the next export puts the old one back before building its own
    _killed_export(run, "kill-at:export-swap-old-moved")
    assert not (export / "onnx").exists()
    pid = _killed_export(run, "kill-at:export-loaded")
    assert sorted(p.name for p in export.iterdir()) == [".onnx.lock", f".onnx.partial-{pid}", "onnx"]
    assert (export / "onnx" / "export.json").is_file()

    code, log = run_cli("export", str(run), "--onnx")
    assert code == 0, log
    assert sorted(p.name for p in export.iterdir()) == ["onnx"]  # no partial, old or lock left
    assert _tagged(run, tmp_path / "last.jsonl")["tags"] == first["tags"]
