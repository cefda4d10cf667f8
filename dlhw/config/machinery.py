"""The config machinery: dataclass schemas, YAML loading, ``--set key=value`` overrides, validation.

Every recipe has one YAML file in ``configs/`` holding its full preset at the top level and
its other presets (``tiny``) as partial overlays under ``presets:``. Resolving a config means:
load the recipe file -> overlay the preset -> overlay ``--set`` overrides -> build the family's
dataclass, which rejects unknown keys and wrong types with the dotted path of the offending key
(:func:`dlhw.core.registry.resolve_config` does the steps in that order).

Field help comes from the attribute docstrings written under each field (litgpt style), read
with :func:`field_docs`; ``dlhw config show --explain`` prints them.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import difflib
import inspect
import textwrap
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from dlhw.errors import ConfigError


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Return ``{field: docstring}`` for the attribute docstrings written under dataclass fields.

    Fields a config class inherits (the base run config's ``recipe``, ``seed``, ``train``) keep
    the docstrings written in the class that declares them.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):  # base classes first, so subclasses may re-document
        docs.update(_own_field_docs(klass))
    return docs


def _own_field_docs(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def nearest(name: str, choices: list[str] | set[str]) -> str:
    """``"; did you mean X?"`` for the closest of ``choices`` to a misspelt ``name`` (``""`` when none is close)."""
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as err:
                errors.append(err)
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{path}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        key_tp, value_tp = typing.get_args(tp) or (Any, Any)
        return {_coerce(k, key_tp, f"{path} key {k!r}"): _coerce(v, value_tp, f"{path}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, path)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from a plain mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(
            f"{where}: unknown key{nearest(unknown[0], names)}; {cls.__name__} accepts: {', '.join(sorted(names))}"
        )
    kwargs = {
        key: _coerce(value, hints[key], f"{path}.{key}" if path else key)
        for key, value in data.items()
    }
    try:
        return cls(**kwargs)
    except ConfigError as err:
        if path and not str(err).startswith(path):
            raise ConfigError(f"{path}.{err}") from None
        raise


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-mapping form of a config dataclass (for YAML)."""
    return dataclasses.asdict(obj)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in recursively (mappings merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> dict[str, Any]:
    """Turn ``"train.epochs=3"`` into ``{"train": {"epochs": 3}}`` (values parsed as YAML)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({err})") from None
    for part in reversed(key.split(".")):
        value = {part: value}
    return value  # type: ignore[return-value]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; syntax errors name the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = str(getattr(err, "problem", err))
        if isinstance(err, yaml.constructor.ConstructorError) and "tag '" in problem:
            # the safe loader refused to build an object (``!!python/...``): nothing ran; say so plainly
            tag = problem.split("tag '", 1)[1].rstrip("'").replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(f"{where}: the tag {tag} is not allowed (a config holds plain values; dlhw builds "
                              "no objects from YAML); remove the tag") from None
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def explain(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """Rows ``(dotted key, type, help)`` for every field of ``cls``, nested dataclasses expanded."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            rows.extend(explain(tp, key + "."))
        else:
            rows.append((key, _type_name(tp), docs.get(f.name, "")))
    return rows


