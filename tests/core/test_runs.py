"""The typed run directory: the file names in one place, atomic writes, and the readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlhw.core import runs
from dlhw.core.atomic import write_json_atomic, write_jsonl_atomic, write_text_atomic
from dlhw.core.faults import fault_name, fault_point
from dlhw.core.runs import RunFiles, read_eval, read_train_summary

OLD = {"split": "test", "metrics": {"bleu_4": 0.25, "cider": 0.5}, "note": "old " * 2000}
NEW_SOURCE = '{"split": "test", "metrics": {"bleu_4": 0.75}, "samples": ["سلام دنیا"] * 20_000}'  # ~400 kB
NEW = {"split": "test", "metrics": {"bleu_4": 0.75}, "samples": ["سلام دنیا"] * 20_000}  # NEW_SOURCE, evaluated

# Write NEW over argv[1] the way every run file is written; "renamed" shows the process lived past the rename.
WRITER = f"""
import sys
from dlhw.core.atomic import write_json_atomic
write_json_atomic(sys.argv[1], {NEW_SOURCE})
print("renamed", flush=True)
"""


def _write_killed(path: Path, fault: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DLHW_FAULT": fault})


def test_an_atomic_write_replaces_the_whole_file(tmp_path):
    path = write_json_atomic(tmp_path / "eval.json", OLD)
    assert json.loads(path.read_text(encoding="utf-8")) == OLD
    write_json_atomic(path, {"metrics": {"bleu_4": 0.75}})
    # shorter than OLD: nothing of the old tail survives, and no temporary file is left beside it
    assert path.read_text(encoding="utf-8") == '{\n  "metrics": {\n    "bleu_4": 0.75\n  }\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]
    write_text_atomic(path, "short")
    assert path.read_bytes() == b"short"


def test_atomic_writes_keep_the_json_formatting_of_run_files(tmp_path):
    data = {"text": "سلام", "ids": [1, 2]}
    assert write_json_atomic(tmp_path / "a.json", data).read_text(encoding="utf-8") == json.dumps(
        data, indent=2, ensure_ascii=False)
    assert write_json_atomic(tmp_path / "b.json", data, indent=None).read_text(encoding="utf-8") == \
        '{"text": "سلام", "ids": [1, 2]}'
    lines = write_jsonl_atomic(tmp_path / "p.jsonl", [{"a": 1}, {"b": "é"}]).read_text(encoding="utf-8")
    assert lines == '{"a": 1}\n{"b": "é"}\n'


def test_an_atomic_write_creates_its_folder_and_honours_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_text_atomic(tmp_path / "plots" / "deep" / "report.md", "# r")
    finally:
        os.umask(old)
    assert path.read_text(encoding="utf-8") == "# r"
    assert path.stat().st_mode & 0o777 == 0o640  # as open() would give, not mkstemp's 0o600


def test_a_value_json_cannot_hold_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "eval.json", OLD)
    with pytest.raises(TypeError):
        write_json_atomic(path, {"metrics": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]


def test_killed_before_the_rename_the_old_eval_json_stays_whole(tmp_path):
    path = write_json_atomic(tmp_path / "eval.json", OLD)
    proc = _write_killed(path, "kill-before-rename:eval.json")
    assert proc.returncode == -9, proc.stderr
    assert "renamed" not in proc.stdout
    assert json.loads(path.read_text(encoding="utf-8")) == OLD
    # the only other file is the hidden temporary, and it is whole: the kill came after the full write
    others = [p for p in tmp_path.iterdir() if p != path]
    assert len(others) == 1 and others[0].name.startswith(".eval.json.") and others[0].suffix == ".tmp"
    assert json.loads(others[0].read_text(encoding="utf-8")) == NEW
    for leftover in tmp_path.iterdir():  # no truncated file anywhere: every file parses
        json.loads(leftover.read_text(encoding="utf-8"))
    write_json_atomic(path, NEW)  # the next write of the file removes the dead writer's temporary
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]
    assert json.loads(path.read_text(encoding="utf-8")) == NEW


def test_killed_before_the_rename_a_fresh_run_has_no_eval_json(tmp_path):
    proc = _write_killed(tmp_path / "eval.json", "kill-before-rename:eval.json")
    assert proc.returncode == -9, proc.stderr
    assert not (tmp_path / "eval.json").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_the_rename_fault_kills_only_the_file_it_names(tmp_path):
    path = write_json_atomic(tmp_path / "eval.json", OLD)
    proc = _write_killed(path, "kill-before-rename:train_summary.json")
    assert proc.returncode == 0, proc.stderr
    assert "renamed" in proc.stdout
    assert json.loads(path.read_text(encoding="utf-8")) == NEW
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]


def test_the_rename_fault_names_a_file_and_leaves_the_counted_kinds_alone(monkeypatch):
    monkeypatch.setenv("DLHW_FAULT", "kill-before-rename:eval.json")
    assert fault_name("kill-before-rename") == "eval.json"
    assert fault_point("kill-after-step") is None  # the training callback reads it every step
    assert fault_point("kill-after-batch") is None


def test_run_files_spell_the_names_runs_have_on_disk(tmp_path):
    files = RunFiles(tmp_path)
    # the literal names are the contract with every run already written: a rename breaks old runs
    assert {name: getattr(files, name).relative_to(tmp_path).as_posix() for name in (
        "config", "checkpoints", "metrics", "plots", "model", "train_summary", "base_eval", "eval", "probes",
        "splits", "data_stats", "sparsity", "report", "export", "tensorboard", "hf_export")} == {
        "config": "config.yaml", "checkpoints": "checkpoints", "metrics": "metrics.jsonl", "plots": "plots",
        "model": "model", "train_summary": "train_summary.json", "base_eval": "base_eval.json",
        "eval": "eval.json", "probes": "probes.jsonl", "splits": "splits.json", "data_stats": "data_stats.json",
        "sparsity": "sparsity.json", "report": "report.md", "export": "export/onnx", "tensorboard": "tensorboard",
        "hf_export": "export/hf"}
    assert files.predictions("val") == tmp_path / "predictions_val.jsonl"
    assert files.plot("loss.png") == tmp_path / "plots" / "loss.png"
    assert files.eval.name == runs.EVAL_FILE and files.train_summary.name == runs.TRAIN_SUMMARY_FILE
    assert files.config.name == runs.CONFIG_FILE and files.export / runs.EXPORT_META == \
        tmp_path / "export" / "onnx" / "export.json"
    assert RunFiles(str(tmp_path)) == files


def test_the_run_helpers_use_the_same_names(tmp_path):
    run = tmp_path / "run"
    files = RunFiles(run)
    write_text_atomic(files.config, "recipe: caption-transformer\n")
    write_json_atomic(files.model / "config.json", {})
    assert runs.require_run_dir(run) == run
    assert runs.run_config_dict(run) == {"recipe": "caption-transformer"}
    write_json_atomic(files.export / runs.EXPORT_META, {"files": {}})
    assert runs.export_dir_of(run) == files.export
    with pytest.raises(RuntimeError), runs.removed_if_failed(run):  # no eval.json yet: the run goes
        raise RuntimeError
    assert not run.exists()
    write_json_atomic(files.eval, OLD)
    with pytest.raises(RuntimeError), runs.removed_if_failed(run):  # finished: it stays
        raise RuntimeError
    assert read_eval(run) == OLD


def test_the_readers_return_what_the_writers_wrote_and_empty_when_absent(tmp_path):
    files = RunFiles(tmp_path)
    assert read_eval(tmp_path) == {} and read_train_summary(files) == {}
    summary = {"recipe": "chat-lora", "label": "lora", "model": {"trainable_parameters": 12, "parameters": 100,
                                                                 "trainable_percent": 12.0},
               "train": {"wall_time_s": 3.5, "peak_memory_mb": 200.0}, "data": {"train": 4}}
    write_json_atomic(files.train_summary, summary)
    write_json_atomic(files.eval, OLD)
    assert read_train_summary(tmp_path) == summary  # a family's own keys ("data") come back too
    assert read_eval(files) == OLD


def test_a_folder_s_dead_writers_temporaries_are_removed_at_once_and_live_ones_kept(tmp_path):
    from dlhw.core.atomic import remove_stale_temporaries_in

    dead = tmp_path / ".s-00001-5d41402a.wav.999999999.0badf00d.tmp"  # no process has this PID
    live = tmp_path / f".s-00002-5d41402a.wav.{os.getpid()}.0badf00d.tmp"
    kept = tmp_path / "s-00003-5d41402a.wav"
    for path in (dead, live, kept):
        path.write_bytes(b"RIFF")
    assert remove_stale_temporaries_in(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, kept.name])
    assert remove_stale_temporaries_in(tmp_path / "missing") == []
