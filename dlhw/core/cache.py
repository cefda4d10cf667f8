"""dlhw's cache of generated assets (the tiny presets' pretrained bases).

Everything lives under ``$DLHW_CACHE_DIR`` (default ``~/.cache/dlhw``). A cached asset's key
is a hash of the config that generates it and of the source code that does the generating,
so changing either builds a new asset instead of silently reusing a stale one.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    return Path(os.environ.get("DLHW_CACHE_DIR", Path.home() / ".cache" / "dlhw"))


def asset_key(config: Any, *code: ModuleType | Any, length: int = 12) -> str:
    """A short hash of ``config`` (JSON-able) and of the source of ``code`` (modules or functions)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode("utf-8"))
    for item in code:
        digest.update(inspect.getsource(item).encode("utf-8"))
    return digest.hexdigest()[:length]


def cached_base(path: Path, build: Callable[[Path], None], what: str, log: bool = True) -> Path:
    """``path`` if it holds a finished base (``pretrain.json`` written last); else ``build(folder)`` into a
    temporary folder and move it there atomically, so a concurrent run sees the whole folder or none."""
    if (path / "pretrain.json").is_file():
        return path
    start = time.perf_counter()
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    try:
        os.replace(tmp, path)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    if log:
        logger.info(f"{what} pretrained in {time.perf_counter() - start:.0f} s, cached at {path}")
    return path
