"""One parity check for every export: the same inputs through torch and ONNX Runtime, compared.

A family's export checker runs its check inputs through both backends and hands the results to
:func:`check_parity`: named outputs as ``(torch, ort)`` pairs, and the discrete answers both must
give item by item (:class:`Decision`: greedy tokens per prompt, tags per sentence, stop steps per
utterance). The check refuses the export -- :class:`~dlhw.errors.DlhwError` naming what differs
and by how much -- when a decision differs or an output's largest absolute difference exceeds
its limit (``atol``, or a per-output limit); otherwise it returns the report ``export.json``
keeps under ``parity``, with a one-line ``summary`` worded the same for every family::

    parity vs torch on 12 prompts over 24 greedy steps: max |diff| logits 2.1e-06 (tolerance 0.001);
    greedy tokens equal on 12/12 prompts (288 tokens)

Decisions are compared first: where one backend's greedy tokens or stop steps differ, the steps
recorded afterwards are not comparable (their counts may even differ).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlhw.errors import DlhwError

REFUSED = "nothing was written"
"""How every refusal ends: the export is checked in a hidden directory that is then removed."""


def _as_is(item: Any) -> Any:
    return item


@dataclass(frozen=True)
class Decision:
    """A discrete answer torch and ONNX Runtime must give identically, item by item (compared with ``==``)."""

    name: str
    """What is decided, plural: ``"greedy tokens"``, ``"tags"``, ``"stop steps"``."""
    unit: str
    """What one item is, singular: ``"prompt"``, ``"test sentence"``, ``"utterance"``."""
    torch: Sequence[Any]
    ort: Sequence[Any]
    detail: str = ""
    """Said in parentheses after the summary's count, e.g. ``"288 tokens"``."""
    show: Callable[[Any], Any] = _as_is
    """How an item appears in the error (e.g. its first 8 tokens)."""


def check_parity(outputs: Mapping[str, tuple[Any, Any]], atol: float, *, limits: Mapping[str, float] | None = None,
                 decisions: Sequence[Decision] = (), what: str = "the check inputs",
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Compare torch with ONNX Runtime; raise :class:`DlhwError` on a difference, else return the report.

    Args:
        outputs: output name -> ``(torch, ort)``; each side is one array (torch tensor or numpy) or a
            list of arrays compared pairwise (one per decoding step or per prompt). The shapes must
            match; the largest absolute difference over all pairs is the output's difference.
            Equal infinities, and NaN on both sides at the same place, count as agreement; NaN on one
            side only fails the check.
        atol: the tolerance of every output without its own limit.
        limits: per-output tolerances that replace ``atol`` (tts: the waveform at ``10 * atol``).
        decisions: discrete answers that must be equal item by item; checked before the outputs.
        what: the check inputs, as a noun phrase (``"a check batch of 4 images"``).
        extra: the family's own report keys, kept next to the common ones.

    Returns:
        ``atol``, ``max_abs_diff`` (output -> float), ``limits`` (only the ones that differ from
        ``atol``), the ``extra`` keys and ``summary``.
    """
    if not outputs:
        raise ValueError("check_parity needs at least one output to compare")
    unknown = set(limits or {}) - set(outputs)
    if unknown:
        raise ValueError(f"limits for outputs that are not compared: {sorted(unknown)}")
    for decision in decisions:
        _check_decision(decision)
    diffs = {name: max_abs_diff(name, *pair) for name, pair in outputs.items()}
    limit = {name: (limits or {}).get(name, atol) for name in diffs}
    failed = [name for name in diffs if not diffs[name] <= limit[name]]  # NaN fails too
    if failed:
        worst = max(failed, key=lambda n: _excess(diffs[n], limit[n]))
        others = [n for n in failed if n != worst]
        also = f" (so do {', '.join(map(repr, others))})" if others else ""
        raise DlhwError(f"ONNX export differs from torch by {diffs[worst]:.3g} in {worst!r} on {what}, which exceeds "
                        f"the tolerance {limit[worst]:g}{also}; {REFUSED}")
    own = {name: value for name, value in limit.items() if value != atol}
    tolerance = ", ".join([f"tolerance {atol:g}", *(f"{name} {value:g}" for name, value in own.items())])
    parts = [f"parity vs torch on {what}: max |diff| " + ", ".join(f"{n} {v:.2g}" for n, v in diffs.items())
             + f" ({tolerance})"]
    for d in decisions:
        n = len(d.torch)
        parts.append(f"{d.name} equal on {n}/{n} {d.unit}s" + (f" ({d.detail})" if d.detail else ""))
    report: dict[str, Any] = {"atol": atol, "max_abs_diff": diffs}
    if own:
        report["limits"] = own
    return {**report, **(extra or {}), "summary": "; ".join(parts)}


def max_abs_diff(name: str, ours: Any, theirs: Any) -> float:
    """Largest ``|torch - ort|`` of one output (a pair of arrays, or two lists of arrays compared pairwise)."""
    many = isinstance(ours, list | tuple)
    if many != isinstance(theirs, list | tuple):
        raise ValueError(f"{name!r}: give both sides as arrays or both as lists of arrays")
    if many and len(ours) != len(theirs):
        raise DlhwError(f"ONNX export differs from torch: {name!r} has {len(ours)} arrays from torch and "
                        f"{len(theirs)} from ONNX Runtime; {REFUSED}")
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True) if many else [(ours, theirs)]:
        x, y = _as_array(a), _as_array(b)
        if x.shape != y.shape:
            raise DlhwError(f"ONNX export differs from torch: {name!r} has shape {tuple(x.shape)} from torch and "
                            f"{tuple(y.shape)} from ONNX Runtime; {REFUSED}")
        if x.size == 0:
            continue
        with np.errstate(invalid="ignore"):  # inf - inf: equal infinities are handled below
            diff = np.abs(x - y)
        diff[(x == y) | (np.isnan(x) & np.isnan(y))] = 0.0
        value = float(diff.max())
        if math.isnan(value):
            return value
        worst = max(worst, value)
    return worst


def _check_decision(d: Decision) -> None:
    differ = [i for i, (a, b) in enumerate(zip(d.torch, d.ort, strict=True)) if a != b]
    if differ:
        i = differ[0]
        raise DlhwError(f"ONNX export differs from torch: {d.name} of {len(differ)}/{len(d.torch)} {d.unit}s differ "
                        f"(first: {d.unit} {i}, torch {d.show(d.torch[i])} vs ORT {d.show(d.ort[i])}); {REFUSED}")


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor (any dtype, any device); torch is not imported here
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _excess(diff: float, limit: float) -> float:
    """How far beyond its limit an output is (the worst one is named in the error)."""
    if math.isnan(diff) or limit <= 0:
        return math.inf
    return diff / limit
