"""``dlhw export RUN``: the one entry point, for every family that declares an export spec.

It loads the run's model once, exports into a hidden partial directory, runs the same inputs
through torch and ONNX Runtime, refuses to finish beyond the family's tolerance (naming the
measured difference), optionally writes an int8 model and builds TensorRT engines, writes
``export.json`` last and only then moves the directory into place -- so a failed export leaves
nothing that looks valid. What to export, the tolerance and the checks come from the family
registry (``Family.export`` in :mod:`dlhw.core.registry`).

The move keeps the previous export until the new one is in place: the old folder is renamed to
``.NAME.old-PID``, the new one from ``.NAME.partial-PID`` to ``NAME``, and only then is the old one
deleted. The whole export holds the lock of the export folder (:mod:`dlhw.core.locks`), and starts
by clearing what a killed export left beside it -- putting back the old export first where the kill
came between the two renames (a reader does the same: :func:`dlhw.core.runs.export_dir_of`) -- so
a run's export is never lost, whatever point a process dies at.
``DLHW_FAULT=kill-at:POINT`` (:mod:`dlhw.core.faults`) stops an export at each of them: in order,
``export-start``, ``export-loaded``, ``export-onnx-written``, ``export-parity-checked``,
``export-meta-written``, ``export-swap-begin``, ``export-swap-old-moved``,
``export-swap-new-in-place`` and ``export-swap-done`` (``--hf``: the first and the four of the swap).

``dlhw export RUN --hf`` takes the same path with the family's ``ExportSpec.hf``: a folder that
Hugging Face libraries load offline (adapters merged, or a PEFT adapter for soft prompts), checked
against the run by the family, with a model card (:mod:`dlhw.core.model_card`, ``README.md``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlhw.core.atomic import write_json_atomic
from dlhw.core.family import ExportSpec, Family, HfExport, HfExporter
from dlhw.core.faults import kill_at
from dlhw.core.locks import holding
from dlhw.core.registry import family_of_run
from dlhw.core.runs import (
    EXPORT_META,
    RunFiles,
    put_back_old_export,
    require_run_dir,
    run_config_dict,
    stopped_swap_leftovers,
    swap_folder,
)
from dlhw.errors import ConfigError

log = logging.getLogger(__name__)


def check_export_request(family: Family, *, tensorrt: bool = False, fp16: bool = False, int8: bool = False,
                         force: bool = False) -> ExportSpec:
    """The family's export spec, or a one-line error for a request it cannot meet -- before any work."""
    spec = family.export
    if spec is None:
        raise ConfigError(f"the {family.name} family has no ONNX export")
    if tensorrt and spec.tensorrt is None:
        raise ConfigError(f"--tensorrt: the {family.name} family has no TensorRT export; "
                          "export without --tensorrt and run it with --backend onnxruntime")
    if int8 and spec.int8 is None:
        raise ConfigError(f"--int8: the {family.name} family has no int8 export")
    if force and not int8:
        raise ConfigError("--force overrides the int8 quality gate; it goes with --int8")
    if fp16 and not tensorrt:
        raise ConfigError("--fp16 builds fp16 TensorRT engines; add --tensorrt (the ONNX files stay fp32)")
    if tensorrt:
        from dlhw.backends.tensorrt import require_tensorrt

        require_tensorrt()  # before any work: fail within seconds
    return spec


def export_run(
    run_dir: str | Path, *, tensorrt: bool = False, fp16: bool = False, opset: int | None = None,
    out: str | Path | None = None, atol: float | None = None, max_batch: int = 32, int8: bool = False,
    force: bool = False,
) -> Path:
    """Export a run to ONNX (and int8 / TensorRT engines); return the export directory."""
    run_dir = require_run_dir(run_dir)
    family = family_of_run(run_dir)
    spec = check_export_request(family, tensorrt=tensorrt, fp16=fp16, int8=int8, force=force)
    final = Path(out) if out else run_dir / "export" / "onnx"
    with built_in_place(final) as partial:
        handle = spec.load(run_dir)
        kill_at("export-loaded")
        meta: dict[str, Any] = spec.exporter(handle, partial, opset or spec.opset)
        kill_at("export-onnx-written")
        meta["parity"] = spec.checker(handle, partial, meta, spec.atol if atol is None else atol)
        kill_at("export-parity-checked")
        if int8 and spec.int8 is not None:
            meta["int8"] = spec.int8(handle, partial, force=force)
        if tensorrt and spec.tensorrt is not None:
            meta["tensorrt"] = spec.tensorrt(partial, meta, fp16, max_batch)
        write_json_atomic(partial / EXPORT_META, meta)  # last: a folder with export.json is complete
        kill_at("export-meta-written")
    return final


@contextlib.contextmanager
def built_in_place(final: Path) -> Iterator[Path]:
    """A hidden partial folder beside ``final`` to build an export in, under the lock of ``final``.

    When the block ends well the partial folder replaces ``final`` (the previous export is kept
    until the new one is in place); when it raises, the partial folder is removed and ``final`` is
    left as it was.

    Args:
        final: The export folder to make or replace.

    Yields:
        The partial folder, empty.

    Raises:
        ConfigError: another process is writing ``final``.
    """
    final = Path(final)
    with holding(final):
        kill_at("export-start")
        _clear_leftovers(final)
        partial = swap_folder(final, "partial")
        partial.mkdir(parents=True)
        try:
            yield partial
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        _swap_in(partial, final)


def _clear_leftovers(final: Path) -> None:
    """Remove what killed exports of ``final`` left; first put an old export back where ``final`` is
    missing (a kill between the swap's two renames). The caller holds the lock: no live export owns them."""
    put_back_old_export(final)
    for folder in [*stopped_swap_leftovers(final, "partial"), *stopped_swap_leftovers(final, "old")]:
        log.info("%s: removing %s, left by an export that was stopped", final, folder.name)
        shutil.rmtree(folder)


def _swap_in(partial: Path, final: Path) -> None:
    """Put ``partial`` in place of ``final`` with two renames; the old export is deleted only once the
    new one is in place, so a kill at any point leaves one whole export (or the old one beside)."""
    kill_at("export-swap-begin")
    old = swap_folder(final, "old")
    had_old = final.exists()
    if had_old:
        os.replace(final, old)
    kill_at("export-swap-old-moved")
    try:
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if had_old:
            os.replace(old, final)  # the previous export stays where it was
        raise
    kill_at("export-swap-new-in-place")
    if had_old:
        shutil.rmtree(old)
    kill_at("export-swap-done")


def check_hf_request(family: Family) -> HfExporter:
    """The family's ``--hf`` exporter, or a one-line error saying why it has none -- before any work."""
    spec = family.export
    if spec is None or spec.hf is None:
        why = f" ({spec.no_hf_because})" if spec is not None and spec.no_hf_because else ""
        raise ConfigError(f"--hf: the {family.name} family has no Hugging Face export{why}")
    return spec.hf


def export_hf(run_dir: str | Path, *, out: str | Path | None = None) -> tuple[Path, HfExport]:
    """Export a run as a Hugging Face folder with a model card; return the folder (default ``RUN/export/hf``)
    and what the family says of it."""
    from dlhw.config import from_dict
    from dlhw.core.model_card import write_model_card

    run_dir = require_run_dir(run_dir)
    family = family_of_run(run_dir)
    exporter = check_hf_request(family)
    final = Path(out) if out else RunFiles(run_dir).hf_export
    with built_in_place(final) as partial:
        made = exporter(run_dir, partial)
        config = from_dict(family.config_class, run_config_dict(run_dir))
        datasets = [a.repo_id for a in (family.hub_assets(config) if family.hub_assets else [])
                    if a.kind == "dataset"]
        write_model_card(partial, family, run_dir, made, datasets)  # last: a folder with a card is complete
    return final, made
