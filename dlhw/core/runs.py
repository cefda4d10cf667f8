"""Run directories: ``runs/<recipe>/<timestamp>/`` and what lives in them.

```
config.yaml        the resolved config (re-usable with --config)
checkpoints/       HF Trainer checkpoints (weights, optimizer, scheduler, RNG state)
metrics.jsonl      one JSON record per log event (train loss, eval metrics, samples)
plots/             PNG figures
model/             the final model, save_pretrained-style (safetensors + config)
train_summary.json data, model and training numbers of the run
eval.json          metrics written by `dlhw evaluate`
report.md          the Markdown run report
export/onnx/       `dlhw export RUN --onnx` (export.json names the files)
```
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dlhw.errors import ConfigError

CHECKPOINTS = "checkpoints"
EXPORT_META = "export.json"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


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
def removed_if_failed(run_dir: Path, finished: str = "eval.json") -> Iterator[None]:
    """Delete ``run_dir`` when the block raises before writing ``finished`` in it: a failed run leaves
    nothing that looks like a run (``dlhw report compare runs/...`` would trip on it)."""
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
    runs = sorted(p for p in (Path(root) / recipe).glob("*") if p.is_dir())
    return runs[-1] if runs else None


def require_run_dir(path: str | Path) -> Path:
    """A trained run directory (``config.yaml`` and ``model/``), or a clear error."""
    run_dir = Path(path)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a dlhw run directory (no config.yaml)")
    model_dir = run_dir / "model"
    if not ((model_dir / "config.json").is_file() or (model_dir / "adapter_config.json").is_file()):
        raise ConfigError(
            f"{run_dir}: the run has no final model yet (model/ is missing); finish it with "
            f"`dlhw train --output-dir {run_dir} --resume`"
        )
    return run_dir


def run_config_dict(run_dir: str | Path) -> dict[str, Any]:
    """The raw mapping of ``RUN/config.yaml`` (a clear error when it is missing)."""
    from dlhw.config import load_yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a dlhw run directory (no config.yaml)")
    return load_yaml(path)


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON file's mapping, or ``{}`` when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def export_dir_of(path: str | Path) -> Path:
    """An export directory as given, or the ONNX export inside a run directory."""
    path = Path(path)
    if (path / EXPORT_META).is_file():
        return path
    candidate = path / "export" / "onnx"
    if (candidate / EXPORT_META).is_file():
        return candidate
    raise ConfigError(f"{path}: no ONNX export found; create one with `dlhw export {path} --onnx`")


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
