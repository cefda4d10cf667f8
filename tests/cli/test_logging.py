"""``dlhw -v/-q``: library code logs on the ``dlhw`` logger, commands echo their results; the
Trainer's log records become one compact line each (``dlhw.engine.callbacks.ProgressLineCallback``)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time

import click
import pytest
import torch
from click.testing import CliRunner
from transformers import Trainer, TrainerState, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from dlhw.cli import cli
from dlhw.engine.callbacks import ProgressLineCallback, use_progress_lines
from dlhw.engine.launch import LOG_LEVEL_ENV


@click.command()
def speak() -> None:
    """A command that logs as library code does and echoes its result as commands do."""
    log = logging.getLogger("dlhw.families.speak")
    log.debug("a debug line")
    log.info("an info line")
    log.warning("a warning line")
    click.echo("the result")


@pytest.fixture
def with_speak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.commands, "speak", speak)
    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", LOG_LEVEL_ENV):  # -q sets the first two
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)  # restored to unset after the test


def _invoke(*args: str) -> tuple[str, str]:
    result = CliRunner().invoke(cli, [*args, "speak"], catch_exceptions=False)
    assert result.exit_code == 0
    return result.stdout, result.stderr


def test_the_default_level_shows_info_lines_on_stderr_and_results_on_stdout(with_speak):
    out, err = _invoke()
    assert out == "the result\n"
    assert err == "an info line\na warning line\n"


def test_quiet_keeps_warnings_and_the_result_lines_only(with_speak):
    out, err = _invoke("-q")
    assert out == "the result\n"
    assert err == "a warning line\n"


def test_verbose_adds_debug_lines_named_by_module(with_speak):
    out, err = _invoke("-v")
    assert out == "the result\n"
    assert err.splitlines() == ["DEBUG dlhw.families.speak: a debug line", "INFO dlhw.families.speak: an info line",
                                "WARNING dlhw.families.speak: a warning line"]


def test_a_torchrun_worker_inherits_its_launchers_level(with_speak, monkeypatch):
    monkeypatch.setenv(LOG_LEVEL_ENV, "WARNING")  # what `dlhw -q train --nproc 2` passes to its workers
    assert _invoke()[1] == "a warning line\n"


def test_verbose_and_quiet_together_are_a_usage_error(with_speak):
    result = CliRunner().invoke(cli, ["-v", "-q", "speak"])
    assert result.exit_code == 2
    assert "-v and -q contradict each other" in result.output


def test_the_progress_line_of_a_training_step_an_evaluation_and_the_end():
    callback = ProgressLineCallback()
    state = TrainerState(global_step=40, max_steps=225)
    callback.last = (time.perf_counter() - 10.0, 8)  # 32 steps in the last 10 s
    line = callback.line(state, {"loss": 2.31412, "grad_norm": 0.8, "learning_rate": 2.1e-4, "epoch": 0.53})
    assert re.fullmatch(r"step 40/225 · loss 2\.314 · lr 2\.1e-04 · 3\.2 it/s", line), line
    evaluation = {"eval_loss": 2.10131, "eval_bleu_4": 0.1234, "eval_runtime": 1.5, "eval_samples_per_second": 80.0,
                  "eval_steps_per_second": 5.0, "epoch": 0.53}
    assert callback.line(state, evaluation) == "eval step 40 · loss 2.101 · bleu_4 0.1234"
    end = {"train_runtime": 70.6, "train_samples_per_second": 51.0, "train_steps_per_second": 3.187,
           "total_flos": 1.0, "train_loss": 2.01234, "epoch": 1.0}
    assert callback.line(TrainerState(global_step=225, max_steps=225), end) == \
        "trained 225 steps in 71 s · 3.19 it/s · loss 2.012"


@pytest.mark.parametrize("disable_tqdm", [False, True])
def test_hf_log_printing_is_replaced_by_the_progress_line(tmp_path, disable_tqdm):
    args = TrainingArguments(output_dir=str(tmp_path), disable_tqdm=disable_tqdm, report_to=[], use_cpu=True)
    trainer = Trainer(model=torch.nn.Linear(2, 2), args=args)
    kinds = {type(c) for c in trainer.callback_handler.callbacks}
    assert (PrinterCallback if disable_tqdm else ProgressCallback) in kinds  # what HF would print the dicts with
    use_progress_lines(trainer)
    kinds = {type(c) for c in trainer.callback_handler.callbacks}
    assert PrinterCallback not in kinds and ProgressCallback not in kinds and ProgressLineCallback in kinds


@pytest.mark.slow
def test_verbose_training_shows_debug_and_one_line_per_log(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "dlhw", "-v", "train", "chat-prompt-tuning", "--preset", "tiny", "--output-dir", str(run),
         "--set", "train.max_steps=2", "--set", "train.logging_steps=1"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [f"run directory: {run}", f"done: model in {run / 'model'}, report in "
                                                                  f"{run / 'report.md'}"]
    err = proc.stderr.splitlines()
    assert any(line.startswith("DEBUG dlhw.engine.trainer: Trainer on cpu, 2 steps planned") for line in err), err
    steps = [line for line in err if line.startswith("INFO dlhw.engine.callbacks: step ")]
    assert [line.split(" · ")[0] for line in steps] == ["INFO dlhw.engine.callbacks: step 1/2",
                                                        "INFO dlhw.engine.callbacks: step 2/2"]
    assert all(re.search(r" · loss [\d.]+ · lr [\d.]+e[-+]\d+ · [\d.]+ it/s$", line) for line in steps), steps
    assert any(line.startswith("INFO dlhw.engine.callbacks: eval step 2 · loss ") for line in err), err
    assert any(line.startswith("INFO dlhw.engine.callbacks: trained 2 steps in ") for line in err), err
    assert not any("{'loss'" in line or "'eval_loss'" in line for line in err)  # HF's dicts are gone
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]  # metrics.jsonl keeps every record
    assert all("learning_rate" in r and "grad_norm" in r for r in records if "loss" in r)
