"""Run directories: ``runs/<recipe>/<timestamp>/``, the names of what lives in them, and the readers.

```
config.yaml        the resolved config (re-usable with --config)
checkpoints/       HF Trainer checkpoints (weights, optimizer, scheduler, RNG state)
tensorboard/       TensorBoard event files (train.report_to: auto with tensorboard installed, or tensorboard)
metrics.jsonl      one JSON record per log event (train loss, eval metrics, samples)
plots/             PNG figures
model/             the final model, save_pretrained-style (safetensors + config)
train_summary.json data, model and training numbers of the run
base_eval.json     the base model's scores before fine-tuning (chat, ner, summarization, tts)
eval.json          metrics written by `dlhw evaluate`
predictions_S.jsonl one record per example of split S, from the last evaluation
probes.jsonl       fixed prompts answered by the base and the fine-tuned model (chat)
splits.json        the image ids of each split (caption)
data_stats.json    the lengths that chose the token limits (summarization)
sparsity.json      pruned runs and runs trained from one: sparsity per module, the parent
report.md          the Markdown run report
export/onnx/       `dlhw export RUN --onnx` (export.json names the files)
export/hf/         `dlhw export RUN --hf`: save_pretrained folder (or PEFT adapter) + README.md model card
```

:class:`RunFiles` is the one place these names are spelled; every JSON file of a run is written with
:func:`dlhw.core.atomic.write_json_atomic`, so a reader never sees half of one. :func:`read_eval` and
:func:`read_train_summary` are the readers of ``eval.json`` and ``train_summary.json``, and
:class:`Evaluation` / :class:`TrainSummary` declare the keys the shared reports read.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from dlhw.core.locks import holding
from dlhw.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
METRICS_FILE = "metrics.jsonl"
PLOTS = "plots"
MODEL_DIR = "model"
TRAIN_SUMMARY_FILE = "train_summary.json"
BASE_EVAL_FILE = "base_eval.json"
EVAL_FILE = "eval.json"
PROBES_FILE = "probes.jsonl"
SPLITS_FILE = "splits.json"
DATA_STATS_FILE = "data_stats.json"
SPARSITY_FILE = "sparsity.json"
REPORT_FILE = "report.md"
EXPORT_DIR = "export"
ONNX_EXPORT = "onnx"
HF_EXPORT = "hf"
EXPORT_META = "export.json"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


class RunFiles:
    """The paths of one run directory's files, each named here once.

    Args:
        root: The run directory (it need not exist yet).

    Example:
        ``RunFiles(run_dir).eval`` is ``run_dir / "eval.json"``.
    """

    __slots__ = ("root",)

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFiles({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFiles) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def config(self) -> Path:
        """``config.yaml``: the resolved config."""
        return self.root / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: the HF Trainer's ``checkpoint-N`` folders."""
        return self.root / CHECKPOINTS

    @property
    def tensorboard(self) -> Path:
        """``tensorboard/``: the Trainer's TensorBoard event files (``tensorboard --logdir``)."""
        return self.root / TENSORBOARD_DIR

    @property
    def metrics(self) -> Path:
        """``metrics.jsonl``: one record per log event, appended as training goes."""
        return self.root / METRICS_FILE

    @property
    def plots(self) -> Path:
        """``plots/``: the run's figures."""
        return self.root / PLOTS

    def plot(self, name: str) -> Path:
        """``plots/<name>``, one figure."""
        return self.plots / name

    @property
    def model(self) -> Path:
        """``model/``: the final model, save_pretrained-style."""
        return self.root / MODEL_DIR

    @property
    def train_summary(self) -> Path:
        """``train_summary.json``: data, model and training numbers."""
        return self.root / TRAIN_SUMMARY_FILE

    @property
    def base_eval(self) -> Path:
        """``base_eval.json``: the base model's scores, measured before fine-tuning."""
        return self.root / BASE_EVAL_FILE

    @property
    def eval(self) -> Path:
        """``eval.json``: the scores of the last ``dlhw evaluate`` (or of training's own evaluation)."""
        return self.root / EVAL_FILE

    def predictions(self, split: str) -> Path:
        """``predictions_<split>.jsonl``: one record per example of the last evaluation on ``split``."""
        return self.root / f"predictions_{split}.jsonl"

    @property
    def probes(self) -> Path:
        """``probes.jsonl``: fixed prompts answered by the base and the fine-tuned model."""
        return self.root / PROBES_FILE

    @property
    def splits(self) -> Path:
        """``splits.json``: the example ids of each split, so evaluation scores the same ones."""
        return self.root / SPLITS_FILE

    @property
    def data_stats(self) -> Path:
        """``data_stats.json``: the length statistics that chose the token limits."""
        return self.root / DATA_STATS_FILE

    @property
    def sparsity(self) -> Path:
        """``sparsity.json``: sparsity per module and overall, and the parent run."""
        return self.root / SPARSITY_FILE

    @property
    def report(self) -> Path:
        """``report.md``: the run report."""
        return self.root / REPORT_FILE

    @property
    def export(self) -> Path:
        """``export/onnx/``: the default ONNX export directory (``export.json`` inside names its files)."""
        return self.root / EXPORT_DIR / ONNX_EXPORT

    @property
    def hf_export(self) -> Path:
        """``export/hf/``: the default ``--hf`` export (a save_pretrained folder or PEFT adapter, README.md card)."""
        return self.root / EXPORT_DIR / HF_EXPORT


class ModelNumbers(TypedDict, total=False):
    """``train_summary.json["model"]``: the keys shared reports read (families add their own)."""

    parameters: int
    trainable_parameters: int
    trainable_percent: float


class TrainNumbers(TypedDict, total=False):
    """``train_summary.json["train"]``: :class:`dlhw.engine.trainer.TrainResult` as a mapping."""

    global_step: int
    epochs: float
    wall_time_s: float
    best_checkpoint: str | None
    best_metric: float | None
    best_metric_name: str
    best_eval_loss: float | None
    """Runs written before ``best_metric`` existed."""
    stopped_early: bool
    peak_memory_mb: float


class TrainSummary(TypedDict, total=False):
    """``train_summary.json``: the keys ``report compare`` and the run report read.

    Families add their own (``data``, ``method``, ``frozen_check``, ...), which only their own report
    sections read.
    """

    recipe: str
    preset: str
    label: str
    """How ``report compare`` names the run (else the recipe, else the folder)."""
    model: ModelNumbers
    train: TrainNumbers
    """Absent for runs that do not train (prompting)."""


class Evaluation(TypedDict, total=False):
    """``eval.json``: the keys ``report compare`` and the run report read.

    Families add their own (``plots``, ``samples``, ``strategies``, ...), which only their own report
    sections read.
    """

    split: str
    metrics: dict[str, Any]
    """The family's metrics by key (``Family.metrics`` names the headline ones)."""
    base: dict[str, Any]
    """The same metrics of the base model, where the run measured it."""
    change_from_base: dict[str, float]
    """``metrics[k] - base[k]`` per metric."""


def read_eval(run: RunFiles | str | Path) -> Evaluation:
    """The run's ``eval.json`` (``{}`` when it has none).

    Args:
        run: The run directory, or its :class:`RunFiles`.

    Returns:
        The evaluation mapping.
    """
    return cast(Evaluation, read_json(_files(run).eval))


def read_train_summary(run: RunFiles | str | Path) -> TrainSummary:
    """The run's ``train_summary.json`` (``{}`` when it has none).

    Args:
        run: The run directory, or its :class:`RunFiles`.

    Returns:
        The summary mapping.
    """
    return cast(TrainSummary, read_json(_files(run).train_summary))


def _files(run: RunFiles | str | Path) -> RunFiles:
    return run if isinstance(run, RunFiles) else RunFiles(run)


def default_run_dir(recipe: str, root: str | Path = "runs") -> Path:
    return Path(root) / recipe / datetime.now().strftime("%Y%m%d-%H%M%S")


def prepare_run_dir(run_dir: Path, *, overwrite: bool, resume: bool) -> Path:
    """Create ``run_dir``; refuse a non-empty one unless resuming or overwriting."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--output-dir {run_dir}: exists and is not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not resume:
        if not overwrite:
            raise ConfigError(
                f"--output-dir {run_dir}: not empty. Pass --resume to continue that run or "
                "--overwrite to replace it"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


@contextmanager
def removed_if_failed(run_dir: Path, finished: str = EVAL_FILE) -> Iterator[None]:
    """Delete ``run_dir`` when the block raises before writing ``finished`` in it: a failed run leaves
    nothing that looks like a run (``dlhw report compare runs/...`` would trip on it).

    The block holds the run's lock (:func:`dlhw.core.locks.holding`): a second writer is refused.
    """
    with holding(run_dir):
        try:
            yield
        except BaseException:
            if not (run_dir / finished).exists():
                shutil.rmtree(run_dir, ignore_errors=True)
            raise


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint folders of a run, oldest step first."""
    folder = run_dir / CHECKPOINTS
    found = [(int(m.group(1)), p) for p in folder.glob("checkpoint-*") if (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    # A checkpoint is complete once trainer_state.json is written (it is written last).
    complete = [p for p in checkpoints(run_dir) if (p / "trainer_state.json").is_file()]
    return complete[-1] if complete else None


def latest_run(recipe: str, root: str | Path = "runs") -> Path | None:
    # hidden folders are not runs: a prune or export being built (``.NAME.partial-PID``)
    runs = sorted(p for p in (Path(root) / recipe).glob("*") if p.is_dir() and not p.name.startswith("."))
    return runs[-1] if runs else None


def require_run_dir(path: str | Path) -> Path:
    """A trained run directory (``config.yaml`` and ``model/``), or a clear error."""
    run_dir = Path(path)
    files = RunFiles(run_dir)
    if not files.config.is_file():
        raise ConfigError(f"{run_dir}: not a dlhw run directory (no {CONFIG_FILE})")
    model_dir = files.model
    if not ((model_dir / "config.json").is_file() or (model_dir / "adapter_config.json").is_file()):
        raise ConfigError(
            f"{run_dir}: the run has no final model yet (model/ is missing); finish it with "
            f"`dlhw train --output-dir {run_dir} --resume`"
        )
    return run_dir


def run_config_dict(run_dir: str | Path) -> dict[str, Any]:
    """The raw mapping of ``RUN/config.yaml`` (a clear error when it is missing)."""
    from dlhw.config import load_yaml

    path = RunFiles(run_dir).config
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a dlhw run directory (no {CONFIG_FILE})")
    return load_yaml(path)


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON file's mapping, or ``{}`` when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def export_dir_of(path: str | Path) -> Path:
    """An export directory as given, or the ONNX export inside a run directory.

    An export stopped between the two renames of its swap (see :mod:`dlhw.backends.export`) left the
    previous export beside its place as ``.onnx.old-PID``; it is put back first, so that export is read.
    """
    path = Path(path)
    for found in (path, RunFiles(path).export):
        if not found.exists() and stopped_swap_leftovers(found, "old"):
            put_back_old_export(found)
        if (found / EXPORT_META).is_file():
            return found
    raise ConfigError(f"{path}: no ONNX export found; create one with `dlhw export {path} --onnx`")


def swap_folder(final: Path, kind: str) -> Path:
    """This process's hidden ``.NAME.<kind>-PID`` folder beside the folder ``final`` (an export, a pruned
    run): ``partial`` where it is built, ``old`` where the previous one waits while the new one moves in."""
    return final.parent / f"{_swap_prefix(final, kind)}{os.getpid()}"


def _swap_prefix(final: Path, kind: str) -> str:
    return f".{final.name}.{kind}-"


def stopped_swap_leftovers(final: Path, kind: str) -> list[Path]:
    """The :func:`swap_folder` folders (``partial`` or ``old``) that stopped builds of the folder ``final``
    left beside it, oldest first."""
    folder = final.parent
    prefix = _swap_prefix(final, kind)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def put_back_old_export(final: Path) -> None:
    """Rename the newest ``.NAME.old-PID`` beside the missing export folder ``final`` back to ``final``
    (an export stopped between the two renames of its swap), under ``final``'s lock (re-entrant: an
    export holding it calls this too); nothing when ``final`` exists, there is no old one, or another
    process's export holds the lock (it is swapping ``final`` in now, and leaves a whole export there)."""
    try:
        with holding(final):
            olds = stopped_swap_leftovers(final, "old")
            if final.exists() or not olds:
                return
            olds[-1].replace(final)
    except ConfigError:
        return
    log.info("%s: put back the previous export from %s (an export was stopped while replacing it)",
             final, olds[-1].name)


def model_files(run_dir: Path) -> list[Path]:
    """The run's safetensors weight files (model/, and a tiny base kept in the run), not checkpoints."""
    return sorted(p for p in run_dir.rglob("*.safetensors") if CHECKPOINTS not in p.relative_to(run_dir).parts)


def model_file_sizes(run_dir: Path) -> dict[str, int]:
    """Bytes of the run's model files, raw and gzip-compressed (what zeros buy on disk)."""
    import gzip

    raw = packed = 0
    for path in model_files(run_dir):
        data = path.read_bytes()
        raw += len(data)
        packed += len(gzip.compress(data, compresslevel=6))
    return {"raw_bytes": raw, "gzip_bytes": packed}
