"""Configuration: the machinery (YAML, ``--set``, validation, ``--explain``), the shared
``TrainConfig`` and the base :class:`RunConfig`, and one module per family
(``dlhw.families.caption.config``, ``dlhw.families.chat.config``) plus the shared PEFT section (``dlhw.config.peft``).

Recipes and presets are resolved by :func:`dlhw.core.registry.resolve_config`, which knows which
family (and so which config class) a recipe belongs to.
"""

from dlhw.config.base import RunConfig, TrainConfig
from dlhw.config.machinery import (
    deep_merge,
    dump_yaml,
    explain,
    field_docs,
    from_dict,
    load_yaml,
    parse_override,
    to_dict,
)
from dlhw.errors import ConfigError

__all__ = [
    "ConfigError", "RunConfig", "TrainConfig", "deep_merge", "dump_yaml", "explain", "field_docs",
    "from_dict", "load_yaml", "parse_override", "to_dict",
]
