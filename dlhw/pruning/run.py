"""``dlhw prune RUN``: a pruned copy of any run, and training that starts from a run's weights.

A pruned run is a copy of its parent run directory (config, tokenizer, model files; no
checkpoints, exports or scores) whose model files hold the pruned weights as plain tensors with
zeros, so the family loads and evaluates it like its parent. Beside them: ``sparsity.json``
(per module and overall, with the parent as lineage), ``sparsity.md``, ``plots/sparsity.png``
and the run report (``report.md``) opening with a pruning section: sparsity and the disk sizes dense
vs pruned, raw and compressed.

The pruned run is written whole into a hidden ``.NAME.partial-PID`` folder beside the target and
renamed to the target only once complete (weights, ``sparsity.json``, ``report.md``): a killed prune
leaves no run at the target, and the next prune to that target removes its partial folder. The
whole prune holds the target's lock (:mod:`dlhw.core.locks`). ``DLHW_FAULT=kill-at:POINT`` stops it at
``prune-loaded`` (the parent's model loaded), ``prune-pruned`` (masks baked) and ``prune-saved``
(every file in the partial folder, not yet renamed).

The weights are found in the run's ``*.safetensors`` files by parameter name, whatever prefix a
wrapper adds (``base_model.model.`` and ``.base_layer`` of PEFT), so the same code serves every
family that saves safetensors.
"""

from __future__ import annotations

import logging
import os
import shutil
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from dlhw.core.atomic import write_json_atomic
from dlhw.core.family import Family, ModelLoader
from dlhw.core.faults import kill_at
from dlhw.core.locks import holding
from dlhw.core.registry import family_of_run
from dlhw.core.runs import (
    CHECKPOINTS,
    EVAL_FILE,
    EXPORT_DIR,
    PLOTS,
    REPORT_FILE,
    SPARSITY_FILE,
    RunFiles,
    model_file_sizes,
    model_files,
    read_json,
    stopped_swap_leftovers,
    swap_folder,
)
from dlhw.core.weights import load_weights
from dlhw.errors import ConfigError
from dlhw.pruning.methods import (
    Method,
    Pattern,
    Scope,
    activation_norms,
    bake_masks,
    keep_zeros,
    prunable_modules,
    prune_model,
    sparsity_of,
    summarize_sparsity,
)

log = logging.getLogger(__name__)

# what a pruned copy measures or writes again itself: its parent's would describe the dense model
_NOT_COPIED = {CHECKPOINTS, EXPORT_DIR, EVAL_FILE, REPORT_FILE, PLOTS, SPARSITY_FILE}
_WRAPPER_PARTS = (("base_model.model.", ""), (".base_layer.", "."))


def canonical_name(name: str) -> str:
    """A parameter's name without the prefixes wrappers add (PEFT's ``base_model.model.``, ``.base_layer``)."""
    for part, replacement in _WRAPPER_PARTS:
        name = name.replace(part, replacement) if part.startswith(".") else name.removeprefix(part)
    return name


def module_key(name: str) -> str:
    """A module's name as :func:`canonical_name` gives its weight's, without ``.weight``."""
    return canonical_name(f"{name}.weight").removesuffix(".weight")


def _matches(key: str, name: str) -> bool:
    return key == name or key.endswith("." + name) or name.endswith("." + key)


def _wanted(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {canonical_name(f"{name}.weight"): typing.cast(torch.Tensor, module.weight).detach().cpu()
            for name, module in modules.items()}


def weight_files(run_dir: Path) -> list[Path]:
    """The run's safetensors files, ``model/`` first: a weight is taken from (and written to) the first
    file that holds it, so a full fine-tune's ``model/`` wins over the base kept beside it."""
    return sorted(model_files(run_dir), key=lambda p: (p.relative_to(run_dir).parts[0] != "model", str(p)))


def write_weights(run_dir: Path, weights: dict[str, torch.Tensor]) -> None:
    """Overwrite the named tensors in the run's safetensors files (atomically, file by file)."""
    found: set[str] = set()
    for path in weight_files(run_dir):
        tensors = load_weights(path)  # a damaged file is one line naming it
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
        changed = False
        for key, tensor in tensors.items():
            name = next((n for n in weights if n not in found and _matches(key, n)), None)
            if name is None or "lora_" in key:
                continue
            if tuple(tensor.shape) != tuple(weights[name].shape):
                raise ConfigError(f"{path}: {key} has shape {tuple(tensor.shape)}, the model's "
                                  f"{name} {tuple(weights[name].shape)}")
            tensors[key] = weights[name].to(tensor.dtype).contiguous()
            found.add(name)
            changed = True
        if changed:
            tmp = path.with_suffix(".tmp")
            save_file(tensors, str(tmp), metadata=metadata)
            os.replace(tmp, path)
        if found == set(weights):
            break
    missing = sorted(set(weights) - found)
    if missing:
        raise ConfigError(f"{run_dir}: {len(missing)} pruned weight(s) are not in the run's safetensors files "
                          f"(e.g. {missing[0]}); a base model loaded from the Hub is not part of the run -- "
                          "prune a run that holds its whole model (merged or partial)")


def read_weights(run_dir: Path, names: list[str]) -> dict[str, torch.Tensor]:
    """The named tensors from a run's safetensors files (names as :func:`canonical_name` gives them)."""
    out: dict[str, torch.Tensor] = {}
    for path in weight_files(run_dir):
        tensors = load_weights(path)  # a damaged file is one line naming it
        for key, tensor in tensors.items():
            if "lora_" in key:
                continue
            name = next((n for n in names if n not in out and _matches(key, n)), None)
            if name is not None:
                out[name] = tensor
    return out


def _require_free(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"--output-dir {out_dir}: not empty; choose another folder")


def _clear_partials(out_dir: Path) -> None:
    """Remove the partial folders killed prunes to ``out_dir`` left (the caller holds its lock)."""
    for folder in stopped_swap_leftovers(out_dir, "partial"):
        log.info("%s: removing %s, left by a prune that was stopped", out_dir, folder.name)
        shutil.rmtree(folder)


def prune_run(run_dir: str | Path, out_dir: str | Path, amount: float = 0.3, scope: Scope = "layer",
              method: Method = "l1", pattern: Pattern = "unstructured", include: tuple[str, ...] = (),
              calibration_batches: int = 8) -> dict[str, Any]:
    """Prune the model of ``run_dir`` into the run directory ``out_dir``; returns ``sparsity.json``.

    ``out_dir`` appears only complete (see the module docstring); it must not exist or be empty.

    Raises:
        ConfigError: ``out_dir`` is not empty, or another process is writing it; the family has no
            model to prune, or the model no Linear layers.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    family = family_of_run(run_dir)
    if family.load_model is None:
        raise ConfigError(f"{run_dir}: the {family.name} family has no model to prune")
    with holding(out_dir):
        _require_free(out_dir)
        _clear_partials(out_dir)
        partial = swap_folder(out_dir, "partial")
        try:
            summary = _prune_into(run_dir, partial, out_dir, family, family.load_model, amount=amount, scope=scope,
                                  method=method, pattern=pattern, include=include,
                                  calibration_batches=calibration_batches)
            kill_at("prune-saved")
            _require_free(out_dir)
            os.replace(partial, out_dir)  # an empty out_dir is replaced as well
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return summary


def _prune_into(run_dir: Path, out_dir: Path, final: Path, family: Family, load_model: ModelLoader, *, amount: float,
                scope: Scope, method: Method, pattern: Pattern, include: tuple[str, ...],
                calibration_batches: int) -> dict[str, Any]:
    """Prune the model of ``run_dir`` and write the whole pruned run into the new folder ``out_dir``, whose
    report names ``final``, the run directory it is renamed to."""
    from dlhw.reports.pruning import write_pruning_files
    from dlhw.reports.run_report import write_run_report

    model, label = load_model(run_dir)
    kill_at("prune-loaded")
    model.eval()
    modules = prunable_modules(model, include)
    if not modules:
        raise ConfigError(f"{run_dir}: the model has no Linear layers to prune")
    norms = None
    if method == "wanda":
        if family.calibration is None:
            raise ConfigError(f"--method wanda: the {family.name} family has no calibration data; use --method l1")
        batches = family.calibration(run_dir, calibration_batches)
        norms = activation_norms(model, modules, tqdm(batches, desc="Wanda calibration", leave=False))
    with torch.no_grad():
        prune_model(model, modules, amount, scope=scope, method=method, pattern=pattern, norms=norms)
    bake_masks(model)
    kill_at("prune-pruned")
    shutil.copytree(run_dir, out_dir, ignore=lambda d, names: [n for n in names if Path(d) == run_dir
                                                                and n in _NOT_COPIED])
    write_weights(out_dir, _wanted(modules))
    summary = summarize_sparsity(sparsity_of(modules), model)
    summary.update({
        "parent": str(run_dir.resolve()),
        "method": method, "scope": scope, "pattern": pattern, "amount": amount, "include": list(include),
        "modules": sorted(module_key(name) for name in modules),
        "size": {"dense": model_file_sizes(run_dir)},
        "model": {**summary["model"], "label": label},
    })
    write_json_atomic(RunFiles(out_dir).sparsity, summary)
    write_pruning_files(out_dir, summary)
    write_run_report(out_dir, shown_as=final)
    return summary


def start_from_run(model: nn.Module, init_from: str | Path, on_loaded: Callable[[], None] | None = None) -> int:
    """Load ``init_from``'s weights into ``model`` (by name); if that run was pruned, hold its zeros.

    Returns how many weights are held at zero (0 for a run that was not pruned). ``on_loaded`` runs
    once the weights are in and before the masks are attached. The masks stay attached through
    training; :func:`dlhw.pruning.methods.bake_masks` removes them before saving.
    """
    source = Path(init_from)
    if not model_files(source):
        raise ConfigError(f"train.init_from {source}: no safetensors model files in that run directory")
    params = {canonical_name(n): p for n, p in model.named_parameters()}
    loaded = read_weights(source, list(params))
    if not loaded:
        raise ConfigError(f"train.init_from {source}: none of its tensors match this model's parameters")
    with torch.no_grad():
        for name, tensor in loaded.items():
            if tuple(params[name].shape) != tuple(tensor.shape):
                raise ConfigError(f"train.init_from {source}: {name} has shape {tuple(tensor.shape)}, "
                                  f"this model's {tuple(params[name].shape)}")
            params[name].copy_(tensor.to(params[name].dtype))
    if on_loaded is not None:
        on_loaded()  # the weights are in; the masks (which rename `weight` to `weight_orig`) come next
    sparsity = read_json(RunFiles(source).sparsity)
    if not sparsity:
        return 0
    pruned = set(sparsity["modules"])
    held = {name: module for name, module in model.named_modules()
            if module_key(name) in pruned and "weight" in module._parameters}  # not PEFT's wrapper of it
    return keep_zeros(held)


def record_sparsity(model: nn.Module, run_dir: Path, init_from: str | Path) -> dict[str, Any]:
    """After training from a pruned run: the run's own ``sparsity.json`` (same modules, measured now)."""
    parent = read_json(RunFiles(init_from).sparsity)
    pruned = set(parent["modules"])
    modules = {module_key(n): m for n, m in model.named_modules()
               if module_key(n) in pruned and "weight" in m._parameters}
    summary = summarize_sparsity(sparsity_of(modules), model)
    summary.update({key: parent[key] for key in ("method", "scope", "pattern", "amount", "include", "modules")})
    summary["parent"] = str(Path(init_from).resolve())
    summary["init_from"] = summary["parent"]
    write_json_atomic(RunFiles(run_dir).sparsity, summary)
    return summary
