"""Errors a user can act on. The CLI prints their message (no traceback) and exits 2 or 1."""


class ConfigError(ValueError):
    """A config value, flag or file a user has to fix (exit code 2); the message says where."""


class DlhwError(RuntimeError):
    """Something in the environment or the inputs stops the command (exit code 1)."""


class DataError(DlhwError):
    """Data that cannot be loaded; the message says what to do instead."""
