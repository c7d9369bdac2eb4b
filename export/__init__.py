"""gandapt.export: ONNX export and validation, TensorRT engines, Triton repositories, bundle manifests.

The command-line entry point is ``gandapt-export`` (:mod:`gandapt.export.cli`). Importing this package
(or :mod:`gandapt.export.manifest`) imports no torch: the runtime reads manifests on an edge box.
"""

from __future__ import annotations

from gandapt.lazy import lazy_exports

_LAZY = {
    "ExportSpec": "spec",
    "export_bundle": "bundle",
    "Manifest": "manifest",
    "GraphIO": "manifest",
    "TensorSpec": "manifest",
    "io_spec": "manifest",
    "update_manifest": "manifest",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
