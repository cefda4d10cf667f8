"""Import strings: ``"package.module:name"`` resolved on first use.

The family registry names its entry points this way, so listing recipes or showing a config
never imports torch, and the registry (a low layer) points at higher layers without importing them.
"""

from __future__ import annotations

import importlib
from typing import Any


def import_string(path: str) -> Any:
    """The object named by ``"package.module:name"``, imported on first use."""
    module, sep, name = path.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"{path!r}: expected 'package.module:name'")
    return getattr(importlib.import_module(module), name)
