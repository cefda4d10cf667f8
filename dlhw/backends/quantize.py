"""Dynamic int8 quantization of an exported graph (int8 weights, activations quantized at run time).

The one call every family's ``--int8`` export makes. A graph that keeps its weights in external
data (dlhw's language-model export writes one past :data:`EXTERNAL_DATA_BYTES`), or whose file is as large,
is quantized with external data as well -- ``<target>.data`` beside it -- since protobuf stops at
2 GB.
"""

from __future__ import annotations

from pathlib import Path

EXTERNAL_DATA_BYTES = 1_800_000_000
"""Graphs with more weight bytes than this are written, and quantized, with external data."""


def quantize_int8(source: Path, target: Path) -> None:
    """``target``: ``source`` with dynamic int8 weights (``target.name + '.data'`` too where large)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    data = source.with_name(source.name + ".data")  # where dlhw's exports keep large weights
    size = source.stat().st_size + (data.stat().st_size if data.is_file() else 0)
    external = size > EXTERNAL_DATA_BYTES or data.is_file()
    for stale in (target, target.with_name(target.name + ".data")):
        stale.unlink(missing_ok=True)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, use_external_data_format=external)
