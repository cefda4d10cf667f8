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


def has_external_data(path: Path) -> bool:
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.graph.initializer)


def quantize_int8(source: Path, target: Path) -> None:
    """``target``: ``source`` with dynamic int8 weights (``target.name + '.data'`` too where large)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    size = source.stat().st_size + sum(p.stat().st_size for p in source.parent.glob(f"{source.name}.data"))
    external = size > EXTERNAL_DATA_BYTES or has_external_data(source)
    for stale in (target, target.with_name(target.name + ".data")):
        stale.unlink(missing_ok=True)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, use_external_data_format=external)
