"""Reading a run's safetensors weight files, with one message for a file that cannot be read.

A weights file cut short by a full disk or an interrupted copy, or overwritten by something else,
makes the safetensors reader raise its own error (``SafetensorError: Error while deserializing
header: incomplete metadata, file not fully covered``) deep inside a loader. Every loader of a
run's weights goes through here first, so the user reads one line naming the file and what to do:

``RUN/model/model.safetensors: the weights file is damaged (incomplete metadata, file not fully
covered); re-train the run or restore the file``

:func:`check_weights` reads only the header of each file (a safetensors header lists every tensor's
byte range, and the reader refuses a header whose ranges do not cover the file exactly), so it is
cheap to call before ``from_pretrained`` reads the same files. :func:`load_weights` and
:func:`load_state` load a file that dlhw's own models read themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dlhw.errors import DlhwError

if TYPE_CHECKING:
    import torch
    from torch import nn

WEIGHTS_SUFFIX = ".safetensors"
_FIX = "re-train the run or restore the file"


def damaged(path: str | Path, reason: str) -> DlhwError:
    """The error for a weights file that cannot be read, naming it and saying what to do."""
    return DlhwError(f"{path}: the weights file is damaged ({reason}); {_FIX}")


def _reason(err: BaseException) -> str:
    """The safetensors reader's own words, without its ``Error while deserializing header:`` prefix."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text.split(": ", 1)[1] if text.startswith("Error while deserializing") and ": " in text else text


def check_weights(paths: Iterable[str | Path]) -> None:
    """Refuse the first weights file whose header cannot be read.

    Args:
        paths: weights files, or folders whose ``*.safetensors`` files (at any depth) are checked.

    Raises:
        DlhwError: a file is missing or damaged; the message names it.
    """
    from safetensors import SafetensorError, safe_open

    for given in paths:
        given = Path(given)
        files = sorted(given.rglob(f"*{WEIGHTS_SUFFIX}")) if given.is_dir() else [given]
        for path in files:
            if not path.is_file():
                raise DlhwError(f"{path}: the weights file is missing; {_FIX}")
            try:
                with safe_open(str(path), framework="pt") as handle:
                    handle.keys()
            except (SafetensorError, OSError) as err:
                raise damaged(path, _reason(err)) from err


def load_weights(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of one safetensors file.

    Args:
        path: the ``.safetensors`` file.
        device: where the tensors are placed.

    Raises:
        DlhwError: the file is missing or damaged.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_weights([path])
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError) as err:  # a header that reads but data that does not
        raise damaged(path, _reason(err)) from err


def load_state(module: nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``module`` (every tensor, exactly the module's names and shapes).

    Raises:
        DlhwError: the file is missing or damaged, or it holds other tensors than the model that
            the run's config describes (a file from another run, or half of one).
    """
    state = load_weights(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err)).rstrip(".")
        first = first if len(first) <= 160 else first[:157] + "..."  # torch lists every key; one line is enough
        raise damaged(path, f"its tensors do not fit the model of the run's config: {first}") from err
