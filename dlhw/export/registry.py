"""The export registry: family -> how to export a run, its tolerance, and how to check it.

``export_run`` is the one entry point: it exports into a hidden partial directory, runs the same
inputs through torch and ONNX Runtime, refuses to finish beyond the family's tolerance (naming
the measured difference), optionally builds TensorRT engines, writes ``export.json`` last and
only then moves the directory into place -- so a failed export leaves nothing that looks valid.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlhw.config import load_yaml
from dlhw.errors import ConfigError
from dlhw.recipes import get_recipe, import_string


@dataclass(frozen=True)
class ExportSpec:
    family: str
    exporter: str
    """``module:function(run_dir, out_dir, opset) -> meta`` writing the ONNX files."""
    checker: str
    """``module:function(run_dir, out_dir, meta, atol) -> parity report``; raises beyond atol."""
    tensorrt: str
    """``module:function(out_dir, meta, fp16, max_batch) -> settings`` building the engines."""
    atol: float
    """Largest allowed |torch - ORT| difference (fp32)."""
    opset: int = 17
    """Default ONNX opset (``--opset`` overrides)."""
    int8: str | None = None
    """``module:function(run_dir, out_dir) -> report`` writing an int8 model and its quality change."""

    def load(self, attr: str) -> Any:
        return import_string(getattr(self, attr))


EXPORTERS: dict[str, ExportSpec] = {
    "caption": ExportSpec(
        family="caption",
        exporter="dlhw.export.caption:export_caption",
        checker="dlhw.export.caption:check_caption_export",
        tensorrt="dlhw.export.caption:build_caption_engines",
        atol=1e-3,
    ),
    "chat": ExportSpec(
        family="chat",
        exporter="dlhw.export.chat:export_chat",
        checker="dlhw.export.chat:check_chat_export",
        tensorrt="dlhw.export.chat:build_chat_engines",
        atol=1e-3,
        opset=18,  # optimum-onnx's minimum for Llama / Gemma
        int8="dlhw.export.chat:quantize_chat_export",
    ),
}


def export_run(
    run_dir: str | Path, *, tensorrt: bool = False, fp16: bool = False, opset: int | None = None,
    out: str | Path | None = None, atol: float | None = None, max_batch: int = 32, int8: bool = False,
) -> Path:
    """Export a run to ONNX (and TensorRT engines); return the export directory."""
    from dlhw.training.rundir import require_run_dir

    run_dir = require_run_dir(run_dir)
    family = get_recipe(load_yaml(run_dir / "config.yaml")["recipe"]).family
    if family not in EXPORTERS:
        raise ConfigError(f"{run_dir}: no exporter for the {family} family yet")
    spec = EXPORTERS[family]
    if int8 and spec.int8 is None:
        raise ConfigError(f"--int8: not available for the {family} family yet")
    if fp16 and not tensorrt:
        raise ConfigError("--fp16 builds fp16 TensorRT engines; add --tensorrt (the ONNX files stay fp32)")
    if tensorrt:
        from dlhw.export.tensorrt import require_tensorrt

        require_tensorrt()  # before any work: fail within seconds
    final = Path(out) if out else run_dir / "export" / "onnx"
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        meta = spec.load("exporter")(run_dir, partial, opset or spec.opset)
        meta["parity"] = spec.load("checker")(run_dir, partial, meta, spec.atol if atol is None else atol)
        if int8:
            meta["int8"] = spec.load("int8")(run_dir, partial)
        if tensorrt:
            meta["tensorrt"] = spec.load("tensorrt")(partial, meta, fp16, max_batch)
        (partial / "export.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final
