"""ONNX Runtime sessions for every family: which execution providers, and a check that they took.

``--backend onnxruntime|tensorrt`` and ``--device auto|cpu|cuda|cuda:N`` become a provider list in
one place (:func:`choose_providers`); :func:`open_export` finds an export (or the one inside a
run), reads its ``export.json`` and chooses the providers; :func:`open_session` opens one ONNX
file of it. An export damaged on disk (an ONNX file cut short, an ``export.json`` that is not JSON or
lacks an entry dlhw reads) stops with one line naming the file and the ``dlhw export`` that
remakes it: :func:`read_export_meta` reads the export's JSON files into an :class:`ExportMeta`,
whose missing entries raise that error wherever a family reads them. ONNX Runtime quietly runs on the CPU when a provider it was asked for is missing or
fails to start (the CPU package on a GPU machine, a missing cuDNN or TensorRT library); a user
who asked for a GPU would then wait, slowly, for CPU results. :func:`open_session` compares what
was asked with what the session got and stops with both named.

Nothing heavy is imported at module level: ``onnxruntime`` and ``torch`` load when a session or
a device is resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dlhw.backends.tensorrt import require_tensorrt, tensorrt_providers
from dlhw.core.runs import EXPORT_DIR, EXPORT_META, export_dir_of
from dlhw.errors import ConfigError, DlhwError

if TYPE_CHECKING:
    import onnxruntime as ort

Backend = Literal["torch", "onnxruntime", "tensorrt"]
"""Where a model runs: its torch modules, or its ONNX export on ONNX Runtime (CPU / CUDA) or TensorRT."""
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
_INSTALL = {
    CUDA: "the CPU-only `onnxruntime` package is installed; install the GPU one instead "
          "(pip uninstall -y onnxruntime && pip install 'onnxruntime-gpu[cuda,cudnn]'; the two cannot "
          "share an environment), or pass --device cpu",
    TENSORRT: "install onnxruntime-gpu with TensorRT (pip install 'dlhw[gpu,tensorrt]'), or use --backend onnxruntime",
}


def provider_name(provider: str | tuple[str, dict[str, Any]]) -> str:
    """The name of a provider entry (ONNX Runtime takes a name or a ``(name, options)`` pair)."""
    return provider if isinstance(provider, str) else provider[0]


def choose_providers(backend: Backend | str, device: str, export_dir: Path | None = None,
                     export_meta: dict[str, Any] | None = None) -> list[Any]:
    """The ONNX Runtime providers for ``backend`` on ``device``, most wanted first.

    Args:
        backend: ``onnxruntime`` or ``tensorrt`` (``torch`` opens no ONNX session).
        device: ``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu``, ``cuda`` or
            ``cuda:N``; TensorRT always runs on the GPU and ignores it.
        export_dir: the export directory; TensorRT keeps its engine cache there.
        export_meta: the export's ``export.json`` mapping; TensorRT needs its ``tensorrt`` entry
            (written by ``dlhw export ... --tensorrt``).

    Returns:
        The provider list for :func:`open_session`.

    Raises:
        DlhwError: TensorRT, or the CUDA provider of ONNX Runtime, is not available here.
        ConfigError: an unknown backend or device, CUDA asked for on a machine without it, or a
            TensorRT request for an export without engines.
    """
    if backend == "tensorrt":
        require_tensorrt()  # before the export is looked at: fail within seconds, naming what is missing
        return _tensorrt_providers_of(export_dir, export_meta)
    if backend != "onnxruntime":
        raise ConfigError(f"--backend {backend}: ONNX Runtime sessions run on onnxruntime or tensorrt "
                          "(torch runs the run's own model)")
    device_id = _cuda_device_id(device)
    if device_id is None:
        return [CPU]
    import onnxruntime as ort

    available = ort.get_available_providers()
    if CUDA not in available:
        raise DlhwError(f"--device {device}: this machine has a CUDA GPU but ONNX Runtime here has no "
                        f"{CUDA} (available: {', '.join(available)}): {_INSTALL[CUDA]}")
    return [(CUDA, {"device_id": device_id}), CPU]


def _cuda_device_id(device: str) -> int | None:
    """The CUDA device index ``device`` asks for, or None for the CPU."""
    import torch

    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return None
    if device == "auto":
        return 0
    kind, _, index = device.partition(":")
    if kind != "cuda" or not (index == "" or index.isdigit()):
        raise ConfigError(f"--device {device}: ONNX Runtime runs on auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine "
                          "(torch.cuda.is_available() is False); use --device cpu or auto")
    return int(index or 0)


def _tensorrt_providers_of(export_dir: Path | None, export_meta: dict[str, Any] | None) -> list[Any]:
    if export_dir is None or export_meta is None:
        raise ConfigError("--backend tensorrt: the engines belong to an export; open it with open_export")
    if "tensorrt" not in export_meta:
        raise ConfigError(f"{export_dir}: no TensorRT engines; build them with `dlhw export ... --tensorrt`")
    return tensorrt_providers(export_dir, export_meta["tensorrt"])


def open_session(onnx_path: Path, providers: list[Any], threads: int | None = None) -> ort.InferenceSession:
    """An ``onnxruntime.InferenceSession`` on ``providers``, refused if the first one did not take.

    Args:
        onnx_path: the ONNX file.
        providers: from :func:`choose_providers` (or ``["CPUExecutionProvider"]``); the first is
            the one asked for, the rest are where ONNX Runtime may place nodes the first cannot run.
        threads: intra-op threads; None leaves ONNX Runtime's default (one per core).

    Raises:
        DlhwError: the file is missing or not a loadable ONNX model (cut short, overwritten), or the
            session did not get the provider asked for (ONNX Runtime fell back to the CPU); the
            message names asked and got, and what to install or check.
    """
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import (
        InvalidGraph,
        InvalidProtobuf,
        NoSuchFile,
    )

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if not Path(onnx_path).is_file():
        raise DlhwError(f"{onnx_path}: the ONNX file is missing; {reexport_hint(Path(onnx_path).parent)}")
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=providers)
    except (InvalidProtobuf, InvalidGraph, NoSuchFile) as err:  # the file, not the providers: cut short, overwritten
        # ONNX Runtime says "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from X failed:REASON"
        reason = (str(err).split("failed:", 1)[-1].strip().splitlines() or [type(err).__name__])[0].rstrip(".")
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        raise DlhwError(f"{onnx_path}: the ONNX file is damaged ({reason}); "
                        f"{reexport_hint(Path(onnx_path).parent)}") from err
    asked = [provider_name(p) for p in providers]
    got = session.get_providers()
    if asked and got[:1] != asked[:1]:  # the provider asked for first must be the session's first
        available = ort.get_available_providers()
        if asked[0] in available:
            why = ("the provider is installed but did not start; the ONNX Runtime log above says why "
                   "(usually a CUDA, cuDNN or TensorRT library that is missing or of another version)")
        else:
            why = (f"this ONNX Runtime has no {asked[0]} (available: {', '.join(available)}); "
                   + _INSTALL.get(asked[0], "install an onnxruntime build that has it"))
        raise DlhwError(f"{onnx_path}: ONNX Runtime was asked for {', '.join(asked)} but the session got "
                        f"{', '.join(got)}: {why}")
    return session


def reexport_hint(export_dir: Path) -> str:
    """``re-export with `dlhw export RUN --onnx```, naming the run when the export lies inside one."""
    run = export_dir.parent.parent if export_dir.parent.name == EXPORT_DIR else "RUN"
    return f"re-export with `dlhw export {run} --onnx`"


class ExportMeta(dict[str, Any]):
    """An export's JSON mapping (``export.json``, a family's own ``chat.json`` / ``tts.json``): a dict
    whose missing entries, nested ones too, raise :class:`DlhwError` naming the file and the entry."""

    def __init__(self, data: dict[str, Any], path: Path, where: str = "") -> None:
        super().__init__({k: ExportMeta(v, path, f"{where}{k}.") if isinstance(v, dict) else v
                          for k, v in data.items()})
        self.path = path
        self.where = where

    def __missing__(self, key: str) -> Any:
        raise DlhwError(f"{self.path}: no \"{self.where}{key}\" entry (written by another dlhw version, or "
                        f"edited); {reexport_hint(self.path.parent)}")


def read_export_meta(export_dir: Path, name: str = EXPORT_META) -> ExportMeta:
    """The JSON file ``name`` of an export, checked.

    The file must hold a JSON object; in ``export.json``, ``family`` is a name and ``files`` maps
    graphs to ONNX file names. An entry read later that is not there raises the same kind of error
    (:class:`ExportMeta`), and a named ONNX file that is missing or damaged is refused when it is
    opened (:func:`open_session`).

    Raises:
        DlhwError: the file is missing, is not JSON, or lacks an entry; the message names the file
            and says to export again.
    """
    path = export_dir / name
    hint = reexport_hint(export_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DlhwError(f"{path}: missing from the export; {hint}") from err
    except UnicodeDecodeError as err:
        raise DlhwError(f"{path}: not a JSON file (the byte at offset {err.start} is not UTF-8); {hint}") from err
    except json.JSONDecodeError as err:
        raise DlhwError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); {hint}") from err
    if not isinstance(data, dict):
        raise DlhwError(f"{path}: holds a JSON {type(data).__name__}, not an object; {hint}")
    meta = ExportMeta(data, path)
    if name == EXPORT_META:
        if not isinstance(meta.get("family", ""), str):
            raise DlhwError(f"{path}: \"family\" is not a family name; {hint}")
        files = meta.get("files", {})
        if not (isinstance(files, dict) and all(isinstance(f, str) and f for f in files.values())):
            raise DlhwError(f"{path}: \"files\" does not map graphs to ONNX file names; {hint}")
    return meta


@dataclass(frozen=True)
class ExportHandle:
    """An opened export: where it is, what ``export.json`` says, and the providers chosen for it."""

    export_dir: Path
    meta: dict[str, Any]
    """The ``export.json`` mapping (an :class:`ExportMeta` when read by :func:`open_export`) (family, files, parity, optional int8 / tensorrt entries)."""
    providers: list[Any]
    """For :func:`open_session`; :meth:`providers_for` adds a graph's own TensorRT profile."""

    def providers_for(self, graph: str) -> list[Any]:
        """The providers for one graph of a multi-graph export.

        TensorRT engines are built per graph with that graph's shape profile (``export.json``:
        ``tensorrt.<graph>``); ONNX Runtime's providers are the same for every graph.
        """
        settings = self.meta.get("tensorrt") or {}
        if (self.providers and provider_name(self.providers[0]) == TENSORRT
                and isinstance(settings.get(graph), dict)):
            return tensorrt_providers(self.export_dir, {**settings, **settings[graph]})
        return self.providers


def open_export(path: str | Path, backend: Backend | str, device: str) -> ExportHandle:
    """The export at ``path`` (an export directory, or a run holding ``export/onnx``), ready to open.

    Args:
        path: an export directory or a run directory.
        backend: ``onnxruntime`` or ``tensorrt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (see :func:`choose_providers`).

    Raises:
        DlhwError: TensorRT or ONNX Runtime's CUDA provider is not available here, or the export's
            ``export.json`` is damaged (see :func:`read_export_meta`).
        ConfigError: no export at ``path``, or see :func:`choose_providers`.
    """
    if backend == "tensorrt":
        require_tensorrt()  # a machine that cannot run TensorRT fails before any path is read
    export_dir = export_dir_of(path)
    meta = read_export_meta(export_dir)
    if backend == "tensorrt":
        return ExportHandle(export_dir, meta, _tensorrt_providers_of(export_dir, meta))
    return ExportHandle(export_dir, meta, choose_providers(backend, device, export_dir, meta))
