"""JSON Lines as dlhw writes and reads them: one record per ``\\n``-ended line, nothing else splits.

JSON lets U+2028, U+2029 and U+0085 stand raw inside a string, and ``json.dumps(...,
ensure_ascii=False)`` leaves them raw; but ``str.splitlines()`` (and many editors and tools) break
lines there. A record holding one (a caption's file name, a Persian document) would read back as
two broken lines, and a resumed job would redo and append that input on every rerun. So the
writer escapes them (``\\u2028``: the same string to any JSON reader) and the reader splits on
``\\n`` alone.
"""

from __future__ import annotations

import json
from typing import Any

_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}
"""Line separators of ``str.splitlines()`` that JSON leaves raw (the others are control characters,
which ``json.dumps`` escapes already)."""


def json_line(record: Any, *, ensure_ascii: bool = False) -> str:
    """``record`` as one JSON line, ``\\n`` included, with no character that any reader takes for a line
    break (non-ASCII text stays readable unless ``ensure_ascii``)."""
    text = json.dumps(record, ensure_ascii=ensure_ascii)
    if not ensure_ascii and any(s in text for s in _SEPARATORS):
        for raw, escaped in _SEPARATORS.items():
            text = text.replace(raw, escaped)  # only inside strings: JSON has these nowhere else
    return text + "\n"


def split_records(text: str) -> list[str]:
    """The lines of a JSON-lines text, split on ``\\n`` only (a final ``\\r`` dropped); blank lines
    are left out."""
    return [line for line in (raw.removesuffix("\r") for raw in text.split("\n")) if line.strip()]
