"""The CPU thread policy: usable CPUs (affinity, cgroup v1/v2 quota), the precedence of the settings,
the environment it hands to OpenMP, torch and child processes, and the CLI's ``--threads``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlhw.core import threads
from dlhw.core.threads import ThreadDecision, UsableCpus
from tests.conftest import run_cli

TWO = UsableCpus(affinity=2, quota=None)


@pytest.fixture(autouse=True)
def _fresh_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no decision applied and nothing written by the policy."""
    monkeypatch.setattr(threads, "_applied", None)
    monkeypatch.setattr(threads, "_written", {})


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cpu_max_and_cfs_files_give_cpus_or_none():
    assert threads.parse_cpu_max("max 100000\n") is None
    assert threads.parse_cpu_max("150000 100000\n") == 1.5
    assert threads.parse_cpu_max("200000 100000") == 2.0
    assert threads.parse_cfs("-1\n", "100000\n") is None
    assert threads.parse_cfs("50000\n", "100000\n") == 0.5


def test_cgroup_v1_quota_of_the_process_cgroup_and_its_parents(tmp_path: Path):
    proc = tmp_path / "cgroup"
    write(proc, "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    root = tmp_path / "fs"
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    write(root / "cpu,cpuacct" / "docker" / "cpu.cfs_quota_us", "300000\n")
    write(root / "cpu,cpuacct" / "docker" / "cpu.cfs_period_us", "100000\n")
    write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "150000\n")
    write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_quota(proc, root) == 1.5
    # a parent's smaller quota limits the child
    write(root / "cpu,cpuacct" / "docker" / "cpu.cfs_quota_us", "100000\n")
    assert threads.cgroup_cpu_quota(proc, root) == 1.0
    # no quota anywhere
    for folder in (root / "cpu,cpuacct" / "docker", root / "cpu,cpuacct" / "docker" / "abc"):
        write(folder / "cpu.cfs_quota_us", "-1\n")
    assert threads.cgroup_cpu_quota(proc, root) is None


def test_cgroup_v1_inside_a_container_reads_its_own_root(tmp_path: Path):
    """The host's path (/docker/abc) is absent under the container's mount: its root is the cgroup."""
    proc = tmp_path / "cgroup"
    write(proc, "1:cpu:/docker/abc\n")
    write(tmp_path / "fs" / "cpu" / "cpu.cfs_quota_us", "100000\n")
    write(tmp_path / "fs" / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_quota(proc, tmp_path / "fs") == 1.0


def test_cgroup_v2_quota_unified_and_hybrid(tmp_path: Path):
    proc = tmp_path / "cgroup"
    write(proc, "0::/user.slice/job\n")
    root = tmp_path / "fs"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(root / "user.slice" / "job" / "cpu.max", "max 100000\n")
    assert threads.cgroup_cpu_quota(proc, root) is None
    write(root / "user.slice" / "cpu.max", "150000 100000\n")
    assert threads.cgroup_cpu_quota(proc, root) == 1.5
    hybrid = tmp_path / "hybrid"  # v1 controllers elsewhere, v2 at root/unified (no cpu line in v1)
    write(hybrid / "unified" / "user.slice" / "job" / "cpu.max", "250000 100000\n")
    assert threads.cgroup_cpu_quota(proc, hybrid) == 2.5


def test_no_cgroup_files_means_no_quota(tmp_path: Path):
    assert threads.cgroup_cpu_quota(tmp_path / "missing", tmp_path) is None
    write(tmp_path / "cgroup", "1:cpu:/\n")  # a cpu line, but no controller folder
    assert threads.cgroup_cpu_quota(tmp_path / "cgroup", tmp_path / "fs") is None


def test_usable_cpus_is_affinity_capped_by_the_rounded_up_quota(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 1.5)
    usable = threads.usable_cpus()
    assert (usable.affinity, usable.quota, usable.count) == (3, 1.5, 2)
    assert usable.describe() == "usable CPUs 2: affinity 3, cgroup quota 1.5 CPUs"
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: None)
    assert threads.usable_cpus().count == 3
    assert UsableCpus(64, 2.0).count == 2
    assert UsableCpus(2, 0.5).count == 1
    assert UsableCpus(1, 8.0).count == 1


def test_precedence_threads_option_then_env_then_user_omp_then_usable_cpus():
    environ = {"DLHW_THREADS": "3", "OMP_NUM_THREADS": "5"}
    assert threads.decide("4", environ, TWO) == ThreadDecision(4, "--threads", TWO)
    assert threads.decide(None, environ, TWO) == ThreadDecision(3, "DLHW_THREADS", TWO)
    assert threads.decide(None, {"OMP_NUM_THREADS": "5"}, TWO) == ThreadDecision(5, "OMP_NUM_THREADS", TWO)
    assert threads.decide(None, {}, TWO) == ThreadDecision(2, "usable CPUs", TWO)
    assert threads.decide(None, {}, TWO).describe() == "2 (usable CPUs 2: affinity 2, cgroup quota none)"
    assert threads.decide("1", {}, TWO).describe() == \
        "1 (from --threads; usable CPUs 2: affinity 2, cgroup quota none)"


def test_apply_sets_the_environment_and_keeps_a_users_omp_unless_threads_is_explicit():
    environ: dict[str, str] = {}
    threads.apply(ThreadDecision(2, "usable CPUs", TWO), environ)
    assert environ == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    # what the policy wrote is not the user's: a second invocation in this process decides afresh
    assert threads.decide(None, environ, TWO).source == "usable CPUs"
    users = {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}
    threads.apply(threads.decide(None, users, TWO), users)
    assert users == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}
    explicit = {"OMP_NUM_THREADS": "3"}
    threads.apply(threads.decide("1", explicit, TWO), explicit)
    assert explicit["OMP_NUM_THREADS"] == "1" and explicit["MKL_NUM_THREADS"] == "1"


def test_tiny_preset_takes_one_thread_only_where_nothing_was_asked_for():
    environ: dict[str, str] = {}
    threads.apply(ThreadDecision(2, "usable CPUs", TWO), environ)
    threads.prefer_for_preset("full", environ)
    assert threads.applied().threads == 2
    threads.prefer_for_preset("tiny", environ)
    assert threads.applied() == ThreadDecision(1, "tiny preset", TWO)
    assert environ["OMP_NUM_THREADS"] == environ["MKL_NUM_THREADS"] == "1"
    asked: dict[str, str] = {}
    threads.apply(ThreadDecision(2, "--threads", TWO), asked)
    threads.prefer_for_preset("tiny", asked)
    assert threads.applied().threads == 2 and asked["OMP_NUM_THREADS"] == "2"


def test_torchrun_workers_share_the_threads():
    threads.apply(ThreadDecision(5, "--threads", TWO), {})
    assert threads.worker_threads(2) == {"DLHW_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert threads.worker_threads(8)["OMP_NUM_THREADS"] == "1"
    threads.apply(ThreadDecision(4, "OMP_NUM_THREADS", TWO), {})
    assert threads.worker_threads(2) == {}  # the user's own OMP_NUM_THREADS goes to each worker as it is


@pytest.mark.parametrize(("args", "environ", "message"), [
    (["--threads", "0"], {}, "error: --threads 0: expected a whole number of threads, 1 or more (e.g. --threads 2)"),
    (["--threads", "-1"], {}, "error: --threads -1: expected a whole number of threads, 1 or more (e.g. --threads 2)"),
    (["--threads", "two"], {}, "error: --threads two: expected a whole number of threads, 1 or more "
                               "(e.g. --threads 2)"),
    ([], {"DLHW_THREADS": "1.5"}, "error: DLHW_THREADS='1.5': expected a whole number of threads, 1 or more "
                                  "(e.g. DLHW_THREADS=2)"),
])
def test_bad_thread_counts_exit_2_with_one_line(monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                environ: dict[str, str], message: str):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code, out = run_cli(*args, "recipes")
    assert (code, out.strip()) == (2, message)


def run_in_fresh_process(script: str, *cli_args: str, **environ: str) -> dict[str, object]:
    """Run the CLI with ``cli_args`` in a child process (so this process's threads stay as they are)
    after ``script``; the child prints torch's thread count, the OpenMP variables and what it was given."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "DLHW_THREADS")}
    env.update(environ)
    code = (f"{script}\nimport io, contextlib, json, os\nfrom dlhw.cli import cli\nout = io.StringIO()\n"
            "from dlhw.errors import ConfigError\n"
            f"with contextlib.redirect_stdout(out):\n    try:\n        cli.main({list(cli_args)!r}, standalone_mode=False)\n"
            "    except ConfigError as err:\n        print(f'error: {err}')\n"
            "import torch\n"
            "print(json.dumps({'torch': torch.get_num_threads(), 'out': out.getvalue(),\n"
            "  **{k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OMP_WAIT_POLICY')}}))\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_threads_1_reaches_torch_openmp_and_env_json():
    """torch imported by the command (``env``), after the group set the environment."""
    seen = run_in_fresh_process("", "--threads", "1", "env", "--json")
    assert (seen["torch"], seen["OMP_NUM_THREADS"], seen["MKL_NUM_THREADS"], seen["OMP_WAIT_POLICY"]) == \
        (1, "1", "1", "PASSIVE")
    info = json.loads(str(seen["out"]))
    usable = threads.usable_cpus()
    assert info["threads"] == {"threads": 1, "source": "--threads", "usable_cpus": usable.count,
                               "affinity": usable.affinity, "cgroup_quota": usable.quota}


def test_cli_threads_reach_torch_imported_before_the_cli():
    seen = run_in_fresh_process("import torch; torch.set_num_threads(2)", "--threads", "1", "recipes")
    assert (seen["torch"], seen["OMP_NUM_THREADS"]) == (1, "1")


def test_cli_default_is_the_usable_cpus_and_a_users_omp_wins():
    usable = threads.usable_cpus()
    seen = run_in_fresh_process("", "env")
    assert (seen["torch"], seen["OMP_NUM_THREADS"], seen["OMP_WAIT_POLICY"]) == \
        (usable.count, str(usable.count), "PASSIVE")
    assert f"threads         {usable.count} ({usable.describe()})\n" in str(seen["out"])
    # torch itself caps its default at the cores, so the user's value is one torch can take
    seen = run_in_fresh_process("", "env", OMP_NUM_THREADS="1", OMP_WAIT_POLICY="ACTIVE")
    assert (seen["torch"], seen["OMP_NUM_THREADS"], seen["MKL_NUM_THREADS"], seen["OMP_WAIT_POLICY"]) == \
        (1, "1", "1", "ACTIVE")
    assert f"threads         1 (from OMP_NUM_THREADS; {usable.describe()})\n" in str(seen["out"])
    seen = run_in_fresh_process("", "env", DLHW_THREADS="1", OMP_NUM_THREADS="3")
    assert (seen["torch"], seen["OMP_NUM_THREADS"]) == (1, "1")


def test_a_tiny_training_takes_one_thread_unless_threads_were_asked_for():
    """The train command applies the tiny preset's thread before anything else (here it then stops at
    the unknown recipe, before any training)."""
    seen = run_in_fresh_process("", "train", "no-such-recipe", "--preset", "tiny")
    assert str(seen["out"]).startswith("error: unknown recipe 'no-such-recipe'")
    assert (seen["torch"], seen["OMP_NUM_THREADS"], seen["OMP_WAIT_POLICY"]) == (1, "1", "PASSIVE")
    usable = threads.usable_cpus().count
    seen = run_in_fresh_process("", "train", "no-such-recipe", "--preset", "tiny", DLHW_THREADS=str(usable))
    assert (seen["torch"], seen["OMP_NUM_THREADS"]) == (usable, str(usable))
