"""Locks on what a command writes (:mod:`dlhw.core.locks`), and the commands that take them.

A holder is another process: a small script that takes the lock, says so on stdout, and waits for
a line on stdin (or is killed at a fault point, as a crash would leave it).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlhw.core.locks import holding, lock_path
from dlhw.errors import ConfigError
from tests.conftest import run_cli

HOLDER = """
import sys
from dlhw.core.faults import kill_at
from dlhw.core.locks import holding

with holding(sys.argv[1]):
    print("held", flush=True)
    kill_at("lock-held")
    sys.stdin.readline()
"""

TAKER = """
import sys
from dlhw.core.locks import holding
from dlhw.errors import ConfigError

try:
    with holding(sys.argv[1]):
        print("taken", flush=True)
except ConfigError as err:
    print(err, flush=True)
    sys.exit(2)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DLHW_FAULT"}
    return {**env, **extra}


class Holder:
    """A live process holding the lock of ``path`` until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=_env())
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "held"

    @property
    def message(self) -> str:
        """The one line a second writer gets."""
        return (f"{self.path} is being written by process {self.proc.pid} (dlhw {self.path}), "
                f"lock {lock_path(self.path)}; wait for it to finish or stop it")

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


def _take(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", TAKER, str(path)], capture_output=True, text=True, timeout=60,
                          env=_env())


def test_a_second_process_is_refused_with_the_holders_pid_and_the_lock_goes_with_its_holder(tmp_path):
    target = tmp_path / "run"
    holder = Holder(target)
    lock = tmp_path / ".run.lock"
    assert lock.read_text().split()[0] == str(holder.proc.pid)
    second = _take(target)
    assert second.returncode == 2 and second.stdout.strip() == holder.message
    assert not target.exists()  # the lock lives beside the run directory, never inside it
    holder.release()
    assert not lock.exists()  # removed on release
    third = _take(target)
    assert (third.returncode, third.stdout.strip()) == (0, "taken") and not lock.exists()


def test_the_lock_of_a_process_killed_while_holding_it_is_taken_over_and_that_is_logged(tmp_path, caplog):
    target = tmp_path / "out.jsonl"
    dead = subprocess.Popen([sys.executable, "-c", HOLDER, str(target)], stdout=subprocess.PIPE, text=True,
                            env=_env(DLHW_FAULT="kill-at:lock-held"))
    out, _ = dead.communicate(timeout=60)
    assert dead.returncode == -9 and out.strip() == "held"
    lock = tmp_path / ".out.jsonl.lock"
    pid = dead.pid
    assert lock.read_text().split()[0] == str(pid)  # the dead holder's lock file is still there
    with caplog.at_level(logging.INFO, logger="dlhw.core.locks"), holding(target) as held:
        assert held == lock and lock.read_text().split()[0] == str(os.getpid())
    assert f"{target}: taking over the lock of process {pid} (dlhw {target}) (no longer running)" in caplog.messages
    assert not lock.exists()


def test_the_lock_is_re_entrant_in_one_process_and_released_by_the_outermost_block(tmp_path):
    target = tmp_path / "run"
    lock = tmp_path / ".run.lock"
    with holding(target):
        with holding(target, "the run"):
            assert lock.exists()
        assert lock.exists()  # the inner block's end does not release the outer one's lock
        refused = _take(target)
        assert refused.returncode == 2 and f"process {os.getpid()} " in refused.stdout
    assert not lock.exists()
    holder = Holder(target)
    try:
        with pytest.raises(ConfigError, match=rf"^the run is being written by process {holder.proc.pid} "), \
                holding(target, "the run"):
            pass
    finally:
        holder.release()


def _fake_run(root: Path) -> Path:
    """A run directory as far as the commands read it before taking the lock (no model is loaded)."""
    run = root / "ner-run"
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text("recipe: ner\npreset: tiny\n", encoding="utf-8")
    (run / "model" / "config.json").write_text("{}", encoding="utf-8")
    return run


@pytest.mark.parametrize(("verb", "locked"), [
    (("evaluate", "{run}"), "{run}"),
    (("report", "run", "{run}"), "{run}"),
    (("export", "{run}", "--onnx"), "{run}/export/onnx"),
    (("prune", "{run}", "--output-dir", "{root}/pruned"), "{root}/pruned"),
    (("train", "ner", "--preset", "tiny", "--output-dir", "{run}", "--overwrite"), "{run}"),
], ids=["evaluate", "report-run", "export", "prune", "train"])
def test_a_command_writing_a_run_that_another_live_process_writes_exits_2_naming_its_pid(tmp_path, verb, locked):
    run = _fake_run(tmp_path)
    target = Path(locked.format(run=run, root=tmp_path))
    holder = Holder(target)
    before = _listing(tmp_path)
    try:
        code, out = run_cli(*(part.format(run=run, root=tmp_path) for part in verb))
    finally:
        holder.release()
    assert code == 2, out
    assert out.strip().splitlines()[-1] == f"error: {holder.message}"
    assert _listing(tmp_path) == before  # refused before writing anything


def _listing(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if not p.name.endswith(".lock"))
