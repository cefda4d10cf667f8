"""Shared fixtures: tiny trained runs are made once per session and reused by several tests.

The session is isolated: before anything is imported, every cache a test could touch -- dlhw's
tiny pretrained bases (``DLHW_CACHE_DIR``), the Hugging Face hub and datasets caches, torch's,
matplotlib's and anything else under ``XDG_CACHE_HOME`` -- points into one temporary directory,
removed when the session ends. No test reads or writes ``~/.cache``; the tiny bases are built
once per session (subprocesses inherit the environment, so they share them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

SESSION_CACHE = Path(tempfile.mkdtemp(prefix="dlhw-test-cache-"))
for _name, _sub in {"DLHW_CACHE_DIR": "dlhw", "HF_HOME": "huggingface", "HF_DATASETS_CACHE": "huggingface/datasets",
                    "TORCH_HOME": "torch", "XDG_CACHE_HOME": "xdg", "MPLCONFIGDIR": "matplotlib",
                    "TRITON_CACHE_DIR": "triton"}.items():
    os.environ[_name] = str(SESSION_CACHE / _sub)
os.environ.pop("HF_HUB_CACHE", None)  # derived from HF_HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("DLHW_FAULT", None)  # a fault is set per test, never inherited

from dlhw.cli import cli, exit_code_for  # noqa: E402


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip by themselves where CUDA is not available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def run_cli(*args: str) -> tuple[int, str]:
    """Invoke the CLI in-process; return (exit code, output) as `dlhw` would exit."""
    result = CliRunner().invoke(cli, list(args))
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        code = exit_code_for(error)
        if code is None:
            raise error
        return code, result.output + f"error: {error}"
    return result.exit_code, result.output


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny run per caption recipe, trained and evaluated (lazily, on first use)."""
    root = tmp_path_factory.mktemp("runs")
    cache: dict[str, Path] = {}

    class Runs(dict):
        def __missing__(self, arch: str) -> Path:
            run_dir = root / f"caption-{arch}"
            code, out = run_cli("train", f"caption-{arch}", "--preset", "tiny", "--output-dir", str(run_dir))
            assert code == 0, out
            code, out = run_cli("evaluate", str(run_dir))
            assert code == 0, out
            cache[arch] = run_dir
            self[arch] = run_dir
            return run_dir

    return Runs()


CHAT_VARIANTS: dict[str, tuple[str, list[str]]] = {
    "prompt-tuning": ("chat-prompt-tuning", []),
    "prefix-tuning": ("chat-prefix-tuning", []),
    "p-tuning": ("chat-p-tuning", []),
    "lora": ("chat-lora", []),
    "dora": ("chat-lora", ["--set", "method.variant=dora"]),
    "rslora": ("chat-lora", ["--set", "method.variant=rslora"]),
    "loha": ("chat-lora", ["--set", "method.variant=loha"]),
    "partial": ("chat-partial", []),
}


@pytest.fixture(scope="session")
def chat_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny chat run per method (the eight of CHAT_VARIANTS), trained on first use."""
    root = tmp_path_factory.mktemp("chat-runs")

    class Runs(dict):
        def __missing__(self, name: str) -> Path:
            recipe, extra = CHAT_VARIANTS[name]
            run_dir = root / name
            code, out = run_cli("train", recipe, "--preset", "tiny", "--output-dir", str(run_dir), *extra)
            assert code == 0, out
            self[name] = run_dir
            return run_dir

    return Runs()
