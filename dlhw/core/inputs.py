"""Text inputs of the batch verbs: ``.txt`` and ``.jsonl`` files, read by one set of rules.

Every batch verb that takes text (``dlhw chat --prompts``, ``dlhw ner``, ``dlhw summarize``,
``dlhw tts``) reads its files here, so a file means the same thing to all of them:

* A UTF-8 byte-order mark at the start of a file is dropped; lines end in LF or CRLF (only
  ``\\n`` splits lines: U+2028, form feeds and the like stay inside a line, as they do in the data).
* Line breaks at the end of a file end it; they add no inputs (so an editor's final blank line
  is not an input).
* ``.jsonl``: one input per line, a JSON value; the family reads the fields it needs.
* ``.txt``: one input per line (``txt="lines"``), or the whole file as one document
  (``txt="document"``, summarization).
* Keys: ``FILE:LINE`` (1-based) for a line, ``FILE`` for a whole file or for a file with nothing
  in it; ``FILE`` is the path as given on the command line (``a/p.txt`` and ``b/p.txt`` are two
  inputs; the same path given the same way on a rerun is the same input), or a label. With
  ``id_field``, a JSON object's id is its key.
* A FIFO, socket or dangling link is never opened (a FIFO would block the job): it is one error
  record, ``not a regular file (a FIFO)``.
* A line that cannot be used is an input too, with an error instead of a value, so the batch
  runner writes one error record for it (keyed by its ``FILE:LINE``) and the job goes on:
  an empty or whitespace-only line (``empty line``), a line that is not UTF-8 (``not UTF-8 (byte
  0xff at column 5)``), a ``.jsonl`` line that is not JSON (``not valid JSON (Expecting value,
  column 1)``) or holds a half surrogate pair. A whole-file document reports the line and column of
  its first bad byte; a file with no lines at all is one error record ``empty file``.
* Two inputs with the same key (two records with the same id) are a :class:`ConfigError` before
  anything runs: the output is keyed by input, so one of them could never be recorded.
* Keys are valid Unicode: a file name that is not UTF-8 or a lone-surrogate id is written with
  backslash escapes (``caf\\xe9.txt``), so writing its record cannot fail.

The reader does linear work per byte (one split, one decode and at most one ``json.loads`` per
line), so a file with a 10 MB line is read in about the time it takes to copy it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dlhw.errors import ConfigError, DlhwError

__all__ = ["TEXT_EXTENSIONS", "InputItem", "check_input_file", "convert_values", "file_kind", "printable_key",
           "read_all", "read_inputs", "text_field"]

TEXT_EXTENSIONS = (".txt", ".jsonl")
"""What a directory given to a text batch verb is searched for."""

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class InputItem:
    """One input of a batch job: its key, and its value or the reason it has none."""

    key: str
    """The record key: ``FILE:LINE``, ``FILE``, or the record's id."""
    value: Any = None
    """A ``.txt`` line or document (str), or a ``.jsonl`` line's JSON value; None on error."""
    error: str | None = None
    """Why this input cannot be used (it becomes the error record's reason); None when it can."""
    where: str = ""
    """``FILE:LINE`` (or ``FILE``) it came from, for messages about an input keyed by its id."""

    def get(self) -> Any:
        """The value; raises ``ValueError(error)`` for an error item, so that a batch runner's
        ``load`` that calls it turns the item into an error record."""
        if self.error is not None:
            raise ValueError(self.error)
        return self.value


def printable_key(key: object) -> str:
    """``str(key)`` (a path, a ``FILE:LINE``, any key with a stable ``str``) as text that encodes to
    UTF-8: the bytes of a non-UTF-8 file name (surrogate-escaped by Python) and lone surrogates
    become backslash escapes (``caf\\xe9.txt``). Valid text is returned unchanged, so keys of
    ordinary files are their paths."""
    text = os.fspath(key) if isinstance(key, os.PathLike) else str(key)
    if not isinstance(text, str):  # a bytes path
        text = os.fsdecode(text)
    if text.isascii():
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")  # undoes os.fsdecode of a non-UTF-8 name
    except UnicodeEncodeError:  # a lone surrogate outside the escape range (from a JSON "\ud800")
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def check_input_file(path: Path) -> None:
    """Raise ValueError (one error record) unless ``path`` is a regular file that can be read: a FIFO
    would block the job forever, a dangling link has nothing to read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as err:
        if path.is_symlink():
            raise ValueError(f"a broken symbolic link (to {printable_key(os.readlink(path))}, which does not "
                             "exist)") from None
        raise ValueError(f"cannot read the file ({err.strerror})") from None
    except OSError as err:
        raise ValueError(f"cannot read the file ({err.strerror or err})") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"not a regular file ({file_kind(mode)})")


def file_kind(mode: int) -> str:
    """What a non-regular file is, from its ``st_mode``: ``a FIFO``, ``a socket``, ..."""
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device", stat.S_ISDIR: "a directory"}
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def read_inputs(path: Path, *, txt: Literal["lines", "document"] = "lines", id_field: str | None = None,
                label: str | None = None) -> list[InputItem]:
    """The inputs of one ``.txt`` / ``.jsonl`` file, by the module's rules.

    Args:
        path: the file; ``.jsonl`` (any case) is JSON Lines, any other suffix is text.
        txt: ``"lines"``: a text file holds one input per line; ``"document"``: it is one input.
        id_field: a ``.jsonl`` object holding this field is keyed by its value instead of its line.
        label: what keys call the file (default: ``path`` as given).

    Raises:
        ConfigError: two inputs have the same key (a repeated id).
    """
    name = printable_key(label if label is not None else path)
    try:
        check_input_file(path)  # a FIFO would block the job: it is one error record instead
    except ValueError as err:
        return [InputItem(name, error=str(err), where=name)]
    try:
        data = path.read_bytes()
    except OSError as err:
        return [InputItem(name, error=f"cannot read the file ({err.strerror or err})", where=name)]
    data = data.removeprefix(_BOM)
    jsonl = path.suffix.lower() == ".jsonl"
    if txt == "document" and not jsonl:
        return [_document(name, data)]
    body = data.rstrip(b"\r\n")  # final line breaks end the file, they are not empty inputs
    if not body:
        return [InputItem(name, error="empty file", where=name)]
    items = [_line(name, number, raw.removesuffix(b"\r"), jsonl, id_field)
             for number, raw in enumerate(body.split(b"\n"), start=1)]
    _refuse_duplicates(items, id_field)
    return items


def read_all(paths: Iterable[Path], *, txt: Literal["lines", "document"] = "lines",
             id_field: str | None = None) -> list[InputItem]:
    """:func:`read_inputs` over several files, in order; a key repeated across files is a ConfigError."""
    items = [item for path in paths for item in read_inputs(path, txt=txt, id_field=id_field)]
    _refuse_duplicates(items, id_field)
    return items


def convert_values(items: Iterable[InputItem], convert: Callable[[InputItem], Any]) -> list[InputItem]:
    """Each usable item's value replaced by ``convert(item)`` (a family's reading of a line or a
    record); one that ``convert`` rejects by raising ValueError or a dlhw error becomes an error item
    with that message, so it is one error record and the job goes on."""
    out = []
    for item in items:
        if item.error is None:
            try:
                item = dataclasses.replace(item, value=convert(item))
            except (ValueError, DlhwError) as err:
                item = dataclasses.replace(item, value=None, error=str(err))
        out.append(item)
    return out


def text_field(record: Any, fields: Sequence[str] = ("text",)) -> str:
    """The first of ``fields`` that the JSON object ``record`` holds: non-blank text, or ValueError."""
    if isinstance(record, dict):
        for field in fields:
            if field in record:
                value = record[field]
                if not isinstance(value, str):
                    raise ValueError(f'"{field}" is {_json_type(value)}, expected a string')
                if not value.strip():
                    raise ValueError(f'"{field}" is empty')
                return value
    names = " or ".join(f'"{f}"' for f in fields)
    raise ValueError(f"expected an object with a string field {names}, got {_kind(record)}")


def _kind(record: Any) -> str:
    if isinstance(record, dict):
        return "an object with keys " + (", ".join(sorted(map(str, record))[:8]) or "(none)")
    return _json_type(record)


def _json_type(value: Any) -> str:
    """What a JSON value is, in JSON's words (a user wrote JSON, not Python)."""
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else "null"


def _document(name: str, data: bytes) -> InputItem:
    """A whole text file as one input; a bad byte is reported by line and column."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        line_start = data.rfind(b"\n", 0, err.start) + 1
        column = len(data[line_start:err.start].decode("utf-8")) + 1  # everything before err.start decodes
        return InputItem(name, error=f"not UTF-8 (byte {data[err.start]:#04x} at line {line}, column {column})",
                         where=name)
    if not text.strip():
        return InputItem(name, error="empty file", where=name)
    return InputItem(name, text.replace("\r\n", "\n"), where=name)


def _line(name: str, number: int, raw: bytes, jsonl: bool, id_field: str | None) -> InputItem:
    """One line as an input (a str, or a JSON value), or the reason it is none."""
    where = f"{name}:{number}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        column = len(raw[:err.start].decode("utf-8")) + 1  # a column in characters, as an editor counts
        return InputItem(where, error=f"not UTF-8 (byte {raw[err.start]:#04x} at column {column})", where=where)
    if not text.strip():
        return InputItem(where, error="empty line", where=where)
    if not jsonl:
        return InputItem(where, text, where=where)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        return InputItem(where, error=f"not valid JSON ({err.msg}, column {err.colno})", where=where)
    if "\\u" in text and _has_lone_surrogate(record):
        return InputItem(where, error="not valid JSON (a \\u escape is half of a surrogate pair)", where=where)
    key = where
    if id_field is not None and isinstance(record, dict) and record.get(id_field) is not None:
        key = printable_key(str(record[id_field]))
    return InputItem(key, record, where=where)


def _has_lone_surrogate(record: Any) -> bool:
    """Whether a JSON value holds a string that is not valid Unicode (json.loads accepts "\\ud800")."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _refuse_duplicates(items: Sequence[InputItem], id_field: str | None) -> None:
    seen: dict[str, InputItem] = {}
    for item in items:
        first = seen.setdefault(item.key, item)
        if first is not item:
            fix = f'give each record its own "{id_field}"' if id_field else "give each file once"
            raise ConfigError(f"{item.where}: duplicate ids: key {item.key!r} is also the key of {first.where}; "
                              f"{fix} (the output holds one record per key)")
