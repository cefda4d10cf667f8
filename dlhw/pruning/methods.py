"""Pruning any model with Linear layers: L1 (per layer or global), Wanda, 2:4; sparsity; kept masks.

``torch.nn.utils.prune`` does the masking: a pruned module holds ``weight_orig`` and
``weight_mask`` and recomputes ``weight = weight_orig * weight_mask`` before every forward, so a
masked weight stays exactly zero however the optimizer moves ``weight_orig``. Saving must come
after :func:`bake_masks` (``prune.remove``), or the files hold ``weight_orig``/``weight_mask``
instead of ``weight``.

Which modules are pruned: every ``nn.Linear`` except the output projection (LM head, or the
last classifier of a model without one) and PEFT adapter matrices; ``include=("lm_head",
"embeddings")`` adds the head and the ``nn.Embedding`` tables.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

Scope = typing.Literal["layer", "global"]
Method = typing.Literal["l1", "wanda"]
Pattern = typing.Literal["unstructured", "2:4"]
INCLUDABLE = ("lm_head", "embeddings")
_ADAPTER_PARTS = ("lora_", "hada_", "prompt_encoder", "prefix_encoder", "modules_to_save")


def _output_head(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    return head if isinstance(head, nn.Module) else None


def prunable_modules(model: nn.Module, include: Iterable[str] = ()) -> dict[str, nn.Module]:
    """The modules whose ``weight`` is pruned, by qualified name (see the module docstring)."""
    include = set(include)
    unknown = include - set(INCLUDABLE)
    if unknown:
        raise ValueError(f"--include: unknown part(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(INCLUDABLE)}")
    head = _output_head(model)
    found: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if any(part in name for part in _ADAPTER_PARTS):
            continue
        is_head = module is head or name.split(".")[-1] == "lm_head"
        linear = isinstance(module, nn.Linear) and (not is_head or "lm_head" in include)
        embedding = isinstance(module, nn.Embedding) and "embeddings" in include and module is not head
        if linear or embedding:
            found[name] = module
    return found


def _effective_weight(module: nn.Module) -> torch.Tensor:
    return typing.cast(torch.Tensor, module.weight).detach()


def two_four_mask(scores: torch.Tensor) -> torch.Tensor:
    """Keep the 2 largest of every 4 consecutive scores along the input dimension (semi-structured).

    ``scores``: (out, in) with ``in`` a multiple of 4; returns a 0/1 mask of the same shape.
    """
    out_features, in_features = scores.shape
    if in_features % 4:
        raise ValueError(f"2:4 pruning needs an input dimension divisible by 4, got {in_features}")
    groups = scores.reshape(out_features, in_features // 4, 4)  # (out, in/4, 4)
    keep = groups.topk(2, dim=-1).indices  # (out, in/4, 2)
    mask = torch.zeros_like(groups).scatter_(-1, keep, 1.0)
    return mask.reshape(out_features, in_features)


def _mask_from_scores(scores: torch.Tensor, amount: float, per_row: bool) -> torch.Tensor:
    """0/1 mask removing the ``amount`` lowest scores (per output row for Wanda, else over all)."""
    flat = scores.reshape(scores.shape[0], -1) if per_row else scores.reshape(1, -1)
    k = round(amount * flat.shape[1])
    mask = torch.ones_like(flat)
    if k:
        drop = flat.topk(k, dim=1, largest=False).indices
        mask.scatter_(1, drop, 0.0)
    return mask.reshape(scores.shape)


@torch.no_grad()
def activation_norms(model: nn.Module, modules: dict[str, nn.Module], batches: Iterable[dict[str, Any]]
                     ) -> dict[str, torch.Tensor]:
    """Wanda's calibration: the L2 norm of each input feature of every module over ``batches``."""
    sums: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in modules.items():
        if not isinstance(module, nn.Linear):
            continue

        def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], _out: Any, name: str = name) -> None:
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1])  # (tokens, in)
            sq = (x * x).sum(0)  # (in,)
            sums[name] = sums[name] + sq if name in sums else sq

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            model(**batch)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    missing = [n for n, m in modules.items() if isinstance(m, nn.Linear) and n not in sums]
    if missing:
        raise ValueError(f"Wanda calibration never reached {len(missing)} module(s), e.g. {missing[0]}")
    return {name: s.sqrt() for name, s in sums.items()}


def prune_model(model: nn.Module, modules: dict[str, nn.Module], amount: float, scope: Scope = "layer",
                method: Method = "l1", pattern: Pattern = "unstructured",
                norms: dict[str, torch.Tensor] | None = None) -> None:
    """Mask ``modules`` in place (masks stay attached; :func:`bake_masks` makes them permanent).

    ``l1`` scores by |W|; ``wanda`` by |W| x the input feature's activation norm (``norms`` from
    :func:`activation_norms`), compared within each output row as in the Wanda paper (per
    layer) or over all modules (``global``). ``2:4`` keeps two of every four consecutive inputs
    and fixes the sparsity at 50% (``amount`` is ignored).
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"--amount must be in [0, 1), got {amount}")
    if not modules:
        raise ValueError("the model has no Linear layers to prune")
    if method == "l1" and pattern == "unstructured":
        if scope == "layer":
            for module in modules.values():
                prune.l1_unstructured(module, "weight", amount=amount)
        else:
            prune.global_unstructured([(m, "weight") for m in modules.values()],
                                      pruning_method=prune.L1Unstructured, amount=amount)
        return
    scores: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        weight = _effective_weight(module).abs().float()
        if method == "wanda":
            if norms is None or (isinstance(module, nn.Linear) and name not in norms):
                raise ValueError("--method wanda needs calibration activations")
            if isinstance(module, nn.Linear):
                weight = weight * norms[name].to(weight.device)[None, :]  # (out, in) x (1, in)
        scores[name] = weight
    if pattern == "2:4":
        masks = {name: two_four_mask(s) for name, s in scores.items()}
    elif scope == "global":
        everything = torch.cat([s.flatten() for s in scores.values()])
        k = round(amount * everything.numel())
        threshold = everything.kthvalue(k).values if k else everything.min() - 1
        masks = {name: (s > threshold).float() for name, s in scores.items()}
    else:
        masks = {name: _mask_from_scores(s, amount, per_row=method == "wanda") for name, s in scores.items()}
    for name, module in modules.items():
        prune.custom_from_mask(module, "weight", masks[name].to(_effective_weight(module).device))


def keep_zeros(modules: dict[str, nn.Module]) -> int:
    """Attach masks that hold every weight that is zero now at zero through training.

    Returns how many weights are held. Used when training starts from a pruned run.
    """
    held = 0
    for module in modules.values():
        mask = (_effective_weight(module) != 0).to(_effective_weight(module).dtype)
        held += int((mask == 0).sum())
        prune.custom_from_mask(module, "weight", mask)
    return held


def bake_masks(model: nn.Module) -> int:
    """Make every attached mask permanent (``weight = weight_orig * weight_mask``); returns the count."""
    baked = 0
    for module in model.modules():
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            trainable = bool(typing.cast(torch.Tensor, module.weight_orig).requires_grad)
            prune.remove(module, "weight")
            typing.cast(torch.Tensor, module.weight).requires_grad_(trainable)  # remove() makes a new Parameter
            baked += 1
    return baked


@dataclass
class LayerSparsity:
    name: str
    zeros: int
    total: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.total if self.total else 0.0


def sparsity_of(modules: dict[str, nn.Module]) -> list[LayerSparsity]:
    """Zeros over total of each module's weight."""
    rows = []
    for name, module in modules.items():
        weight = _effective_weight(module)
        rows.append(LayerSparsity(name, int((weight == 0).sum()), weight.numel()))
    return rows


def model_sparsity(model: nn.Module) -> tuple[int, int]:
    """(zeros, total) over every parameter of the model."""
    zeros = total = 0
    for p in model.parameters():
        zeros += int((p.detach() == 0).sum())
        total += p.numel()
    return zeros, total


def summarize_sparsity(rows: Sequence[LayerSparsity], model: nn.Module) -> dict[str, Any]:
    """The numbers of ``sparsity.json``: per module, over the pruned modules, over the whole model."""
    zeros = sum(r.zeros for r in rows)
    total = sum(r.total for r in rows)
    model_zeros, model_total = model_sparsity(model)
    return {
        "pruned_modules": {"zeros": zeros, "total": total, "sparsity": zeros / total if total else 0.0},
        "model": {"zeros": model_zeros, "total": model_total,
                  "sparsity": model_zeros / model_total if model_total else 0.0},
        "layers": [{"name": r.name, "zeros": r.zeros, "total": r.total, "sparsity": r.sparsity} for r in rows],
    }
