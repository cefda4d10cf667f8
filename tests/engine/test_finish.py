"""The shared ending of every recipe: rank 0 alone writes; the family's summary is checked first,
then the model saved, ``train_summary.json`` written atomically with the shared keys around the
family's, the model evaluated, and the report written."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from dlhw.config import dump_yaml, to_dict
from dlhw.core.registry import resolve_config
from dlhw.engine.finish import finish_run
from dlhw.engine.trainer import TrainResult
from dlhw.errors import DlhwError

RESULT = TrainResult(global_step=12, epochs=2.0, wall_time_s=3.5, best_checkpoint="checkpoints/checkpoint-12",
                     best_metric=0.25, best_metric_name="validation loss", stopped_early=False, peak_memory_mb=100.0)
MODEL = {"backbone": "tiny", "layers": 2, "hidden_size": 32, "vocab_size": 100, "labels": 9, "parameters": 7}


class FakeTrainer:
    def __init__(self, rank_zero: bool):
        self.rank_zero = rank_zero
        self.model = "the trained model"

    def is_world_process_zero(self) -> bool:
        return self.rank_zero


def run_dir_of(tmp_path: Path) -> tuple[Any, Path]:
    config = resolve_config("ner", "tiny")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(dump_yaml(to_dict(config)), encoding="utf-8")
    return config, run_dir


def recording(calls: list[tuple[str, Any]], run_dir: Path) -> dict[str, Any]:
    """save / summary / evaluate hooks that record their calls (and what was on disk at each)."""

    def save(model: Any, model_dir: Path) -> None:
        calls.append(("save", (model, model_dir)))
        model_dir.mkdir(parents=True)
        (model_dir / "weights.bin").write_bytes(b"w")

    def summary(model: Any) -> dict[str, Any]:
        calls.append(("summary", (model, (run_dir / "model").exists())))
        return {"label": "ner", "data": {}, "model": MODEL}  # data {}: the report has no data section

    def evaluate(model: Any) -> None:
        written = json.loads((run_dir / "train_summary.json").read_text())
        calls.append(("evaluate", (model, written["label"])))
        (run_dir / "evaluated").write_text("yes")  # a marker: eval.json would need the family's whole record

    return {"save": save, "summary": summary, "evaluate": evaluate}


def test_a_process_other_than_rank_zero_writes_nothing_and_calls_no_hook(tmp_path):
    config, run_dir = run_dir_of(tmp_path)
    calls: list[tuple[str, Any]] = []
    out = finish_run(FakeTrainer(rank_zero=False), RESULT, config, run_dir, **recording(calls, run_dir))
    assert out == {}
    assert calls == []
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml"]


def test_rank_zero_summarizes_saves_writes_evaluates_and_reports_in_that_order(tmp_path):
    config, run_dir = run_dir_of(tmp_path)
    calls: list[tuple[str, Any]] = []
    out = finish_run(FakeTrainer(rank_zero=True), RESULT, config, run_dir, **recording(calls, run_dir))

    assert calls == [
        ("summary", ("the trained model", False)),  # before anything is saved
        ("save", ("the trained model", run_dir / "model")),
        ("evaluate", ("the trained model", "ner")),  # train_summary.json is already whole on disk
    ]
    written = json.loads((run_dir / "train_summary.json").read_text())
    assert written == out
    assert list(written) == ["recipe", "preset", "label", "data", "model", "train"]  # the shared keys around
    assert (written["recipe"], written["preset"]) == ("ner", "tiny")
    assert written["train"] == asdict(RESULT)
    assert written["data"] == {} and written["model"] == MODEL
    assert not list(run_dir.glob(".*.tmp"))  # written atomically: no temporary file left beside it
    report = (run_dir / "report.md").read_text()
    assert report.startswith("# ner (tiny preset)")
    assert "12 steps, 2.00 epochs, 3.5 s" in report
    assert (run_dir / "evaluated").read_text() == "yes"


def test_without_an_evaluation_the_summary_and_report_are_still_written(tmp_path):
    config, run_dir = run_dir_of(tmp_path)
    calls: list[tuple[str, Any]] = []
    hooks = recording(calls, run_dir)
    out = finish_run(FakeTrainer(rank_zero=True), RESULT, config, run_dir, save=hooks["save"],
                     summary=hooks["summary"])
    assert [name for name, _ in calls] == ["summary", "save"]
    assert out["train"]["global_step"] == 12
    assert (run_dir / "report.md").is_file() and not (run_dir / "evaluated").exists()


def test_a_summary_that_raises_leaves_nothing_saved(tmp_path):
    config, run_dir = run_dir_of(tmp_path)
    calls: list[tuple[str, Any]] = []
    hooks = recording(calls, run_dir)

    def failing_check(model: Any) -> dict[str, Any]:
        raise DlhwError("3 frozen tensors changed during training; the run is not saved")

    with pytest.raises(DlhwError, match="frozen tensors changed"):
        finish_run(FakeTrainer(rank_zero=True), RESULT, config, run_dir, save=hooks["save"], summary=failing_check,
                   evaluate=hooks["evaluate"])
    assert calls == []
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml"]
