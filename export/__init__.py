"""gandapt.export: ONNX export and validation, TensorRT engines, Triton repositories, bundle manifests.

The command-line entry point is ``gandapt-export`` (:mod:`gandapt.export.cli`).
"""
