"""A module tree with parameter counts, trainable ones apart (``dlhw model summary``).

Chains of single-child wrappers (``base_model.model.model``) print as one dotted line, and a
module list prints every element, so a reader sees at a glance which decoder layers train.
"""

from __future__ import annotations

from torch import nn


def _counts(module: nn.Module) -> tuple[int, int]:
    total = trainable = 0
    for p in module.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def module_tree(model: nn.Module, depth: int = 4) -> list[str]:
    """Lines ``name (Class)  params  trainable`` down to ``depth`` levels."""
    rows: list[tuple[str, str, int, int]] = []

    def visit(name: str, module: nn.Module, level: int) -> None:
        children = [(n, c) for n, c in module.named_children() if any(True for _ in c.parameters())]
        while len(children) == 1 and _counts(children[0][1]) == _counts(module):  # fold wrappers
            child_name, module = children[0]
            name = f"{name}.{child_name}" if name else child_name
            children = [(n, c) for n, c in module.named_children() if any(True for _ in c.parameters())]
        total, trainable = _counts(module)
        rows.append(("  " * level + (name or "(model)"), type(module).__name__, total, trainable))
        if level + 1 < depth:
            for child_name, child in children:
                visit(child_name, child, level + 1)

    visit("", model, 0)
    width = max(len(r[0]) + len(r[1]) + 3 for r in rows)
    total, trainable = _counts(model)
    lines = [f"{'module':<{width}} {'parameters':>12} {'trainable':>12}"]
    for name, cls, n, t in rows:
        lines.append(f"{f'{name} ({cls})':<{width}} {n:>12,} {t:>12,}")
    lines.append(f"total {total:,} parameters, {trainable:,} trainable ({100 * trainable / max(total, 1):.3f}%)")
    return lines
