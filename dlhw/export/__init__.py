"""Export to ONNX / TensorRT: a registry of families, each saying what to export and how to check it."""
