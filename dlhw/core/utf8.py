"""Text typed by a user that is not UTF-8: found and named, before a tokenizer trips on it.

Python hands a command's arguments over as text: bytes that are not UTF-8 arrive as "surrogate
escapes" (``\\xff`` becomes ``'\\udcff'``), which no tokenizer, file or terminal can encode, so they
surface later as a ``UnicodeEncodeError`` traceback deep in a model. :func:`require_utf8` refuses
such an argument up front with a usage error naming the option and the byte; :func:`bad_byte`
tells an interactive session the same about one line it read (stdin read with
``errors="surrogateescape"``, see :func:`lenient_stdin`), so the session can say so and go on.
"""

from __future__ import annotations

import sys

from dlhw.errors import ConfigError

_LOW, _HIGH = 0xDC80, 0xDCFF
"""The surrogate escapes of the bytes 0x80..0xFF (PEP 383)."""


def bad_byte(text: str) -> str | None:
    """Where ``text`` holds a byte that was not UTF-8, in words (``byte 0xff at character 3``), or None."""
    for i, char in enumerate(text):
        if _LOW <= ord(char) <= _HIGH:
            return f"byte 0x{ord(char) - 0xDC00:02x} at character {i + 1}"
        if 0xD800 <= ord(char) <= 0xDFFF:  # a lone surrogate from elsewhere: no encoder takes it either
            return f"a lone surrogate U+{ord(char):04X} at character {i + 1}"
    return None


def require_utf8(value: str | None, flag: str) -> str | None:
    """``value`` as given, or a :class:`ConfigError` naming ``flag`` when it holds non-UTF-8 bytes.

    Args:
        value: an option's or argument's value (None: not given).
        flag: how the user spelled it (``--text``).

    Raises:
        ConfigError: the value holds bytes that are not UTF-8 (exit code 2).
    """
    if value is not None and (where := bad_byte(value)) is not None:
        raise ConfigError(f"{flag}: not UTF-8 text ({where}); pass it in UTF-8 (check the terminal's or the "
                          "script's encoding)")
    return value


def lenient_stdin() -> None:
    """Read stdin with surrogate escapes, so a line with a non-UTF-8 byte arrives (and can be refused
    on its own) instead of raising ``UnicodeDecodeError`` and losing what the decoder had read ahead."""
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="surrogateescape")
