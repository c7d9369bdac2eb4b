"""gandapt.runtime: backends, frame sources, face crop, pipeline, display and recording.

Imports no torch (DESIGN §1): an edge box runs ``gandapt-run`` with numpy, opencv and onnxruntime
or TensorRT only. The command-line entry point is :mod:`gandapt.runtime.cli`.
"""
