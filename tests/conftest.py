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


_RUNNING: list[pytest.Item] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _RUNNING[:] = [item]  # before its fixtures are set up: a session run trained for it counts too


def pytest_sessionstart(session: pytest.Session) -> None:
    """A test not marked ``slow`` may not train: every training loop (HF Trainer, the tiny bases'
    pretraining, the scene encoder, the T5) goes through ``Tensor.backward``, which fails for such a
    test -- and for the session runs its fixtures make -- naming the fix. So `make test-fast` trains
    nothing, and a new training test cannot hide in it."""
    import torch

    backward = torch.Tensor.backward

    def guarded(self: torch.Tensor, *args: object, **kwargs: object) -> None:
        item = _RUNNING[0] if _RUNNING else None
        if item is not None and item.get_closest_marker("slow") is None:
            raise RuntimeError(f"{item.nodeid} trains a model (Tensor.backward) but is not marked slow: add "
                               "@pytest.mark.slow, or reuse a run of the tiny_run fixture from a slow test")
        backward(self, *args, **kwargs)  # type: ignore[arg-type]

    torch.Tensor.backward = guarded  # type: ignore[method-assign]


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


class TinyRuns:
    """Tiny runs made once per session: ``tiny_run(recipe, *cli_args, **overrides)``.

    ``recipe`` is a recipe (``dlhw train RECIPE --preset tiny``) or a prompt task (``"prompt
    bbh-sports"``: ``dlhw prompt bbh-sports --preset tiny``); ``cli_args`` are extra options of that
    command and ``overrides`` become ``--set KEY=VALUE`` (dotted keys: ``**{"method.variant": "dora"}``).
    The same request returns the same run directory for the rest of the session; ``output(run)`` is
    what its command printed. :meth:`evaluated` and :meth:`exported` run ``dlhw evaluate`` / ``dlhw
    export`` on a run once.
    """

    def __init__(self, root: Path):
        self.root = root
        self.runs: dict[tuple[object, ...], Path] = {}
        self.outputs: dict[Path, str] = {}
        self.done: set[tuple[Path, tuple[str, ...]]] = set()

    def __call__(self, recipe: str, *cli_args: str, **overrides: object) -> Path:
        key = (recipe, cli_args, tuple(sorted(overrides.items())))
        if key not in self.runs:
            run_dir = self.root / f"{recipe.replace(' ', '-')}-{len(self.runs)}"
            command = recipe.split() if recipe.startswith("prompt ") else ["train", recipe]
            sets = [arg for k, v in sorted(overrides.items()) for arg in ("--set", f"{k}={v}")]
            code, out = run_cli(*command, "--preset", "tiny", *cli_args, *sets, "--output-dir", str(run_dir))
            assert code == 0, out
            self.runs[key] = run_dir
            self.outputs[run_dir] = out
        return self.runs[key]

    def output(self, run_dir: Path) -> str:
        return self.outputs[run_dir]

    def _once(self, run_dir: Path, *args: str) -> Path:
        if (run_dir, args) not in self.done:
            code, out = run_cli(args[0], str(run_dir), *args[1:])
            assert code == 0, out
            self.outputs[run_dir / "+".join(args)] = out
            self.done.add((run_dir, args))
        return run_dir

    def evaluated(self, run_dir: Path) -> Path:
        """The run after one `dlhw evaluate RUN` (once per session)."""
        return self._once(run_dir, "evaluate")

    def exported(self, run_dir: Path, *flags: str) -> Path:
        """The run's ONNX export after one `dlhw export RUN --onnx FLAGS` (once per session)."""
        self._once(run_dir, "export", "--onnx", *flags)
        return run_dir / "export" / "onnx"

    def export_output(self, run_dir: Path, *flags: str) -> str:
        return self.outputs[run_dir / "+".join(("export", "--onnx", *flags))]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    """The session's tiny runs (see :class:`TinyRuns`): every test that needs a trained run asks here."""
    return TinyRuns(tmp_path_factory.mktemp("tiny-runs"))


@pytest.fixture(scope="session")
def trained_runs(tiny_run: TinyRuns) -> dict[str, Path]:
    """One tiny, evaluated run per caption decoder: ``trained_runs["rnn"]``."""

    class Runs(dict):
        def __missing__(self, arch: str) -> Path:
            return tiny_run.evaluated(tiny_run(f"caption-{arch}"))

    return Runs()


CHAT_VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "prompt-tuning": ("chat-prompt-tuning", {}),
    "prefix-tuning": ("chat-prefix-tuning", {}),
    "p-tuning": ("chat-p-tuning", {}),
    "lora": ("chat-lora", {}),
    "dora": ("chat-lora", {"method.variant": "dora"}),
    "rslora": ("chat-lora", {"method.variant": "rslora"}),
    "loha": ("chat-lora", {"method.variant": "loha"}),
    "partial": ("chat-partial", {}),
}


@pytest.fixture(scope="session")
def chat_runs(tiny_run: TinyRuns) -> dict[str, Path]:
    """One tiny chat run per method (the eight of CHAT_VARIANTS): ``chat_runs["dora"]``."""

    class Runs(dict):
        def __missing__(self, name: str) -> Path:
            recipe, overrides = CHAT_VARIANTS[name]
            return tiny_run(recipe, **overrides)

    return Runs()


SUMMARIZATION_RUNS: dict[str, tuple[str, ...]] = {
    "sft": ("summarize-sft",),
    "lora": ("summarize-lora",),
    "zero-shot": ("prompt summarize", "--shots", "0"),
    "3-shot": ("prompt summarize", "--shots", "3"),
}


@pytest.fixture(scope="session")
def summarization_runs(tiny_run: TinyRuns) -> dict[str, Path]:
    """The tiny summarization runs by name (:data:`SUMMARIZATION_RUNS`): ``summarization_runs["sft"]``."""

    class Runs(dict):
        def __missing__(self, name: str) -> Path:
            return tiny_run(*SUMMARIZATION_RUNS[name])

    return Runs()


@pytest.fixture(scope="session")
def ner_run(tiny_run: TinyRuns) -> Path:
    """A tiny ``ner`` run, trained and evaluated by `dlhw train ner --preset tiny`."""
    return tiny_run("ner")


@pytest.fixture(scope="session")
def ner_export(tiny_run: TinyRuns, ner_run: Path) -> tuple[Path, str]:
    """The NER run's export with an int8 model (`dlhw export RUN --onnx --int8`), and what it printed."""
    return tiny_run.exported(ner_run, "--int8"), tiny_run.export_output(ner_run, "--int8")


@pytest.fixture(scope="session")
def tts_run(tiny_run: TinyRuns) -> Path:
    """``dlhw train tts --preset tiny``, then ``dlhw export RUN --onnx``: the run directory."""
    run = tiny_run("tts")
    tiny_run.exported(run)
    return run


BBH_SAMPLES = 5
"""Self-consistency chains per item in the shared prompt run (the full 250 items are scored)."""


@pytest.fixture(scope="session")
def bbh_run(tiny_run: TinyRuns) -> Path:
    """`dlhw prompt bbh-sports --preset tiny` with every strategy on the 250 held-out statements."""
    return tiny_run("prompt bbh-sports", "--samples", str(BBH_SAMPLES))
