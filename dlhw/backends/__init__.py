"""Open an export on torch, ONNX Runtime or TensorRT: one ``Backend`` type, providers chosen and verified.

Families open their ONNX files through :func:`open_export` and :func:`open_session`; nothing else
in dlhw picks ONNX Runtime execution providers. Importing this package loads neither torch nor
onnxruntime.
"""

from dlhw.backends.session import (
    BACKENDS,
    Backend,
    ExportHandle,
    ExportMeta,
    choose_providers,
    open_export,
    open_session,
    provider_name,
    read_export_meta,
)

__all__ = ["BACKENDS", "Backend", "ExportHandle", "ExportMeta", "choose_providers", "open_export", "open_session",
           "provider_name", "read_export_meta"]
