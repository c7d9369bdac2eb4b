"""Inference backends behind one interface: :func:`open_backend` and :func:`available_backends`.

==============  ===========================================  ====================================
name            runs                                         needs
==============  ===========================================  ====================================
onnxruntime     the bundle's ONNX graphs (TensorRT / CUDA     ``onnxruntime`` (``-gpu`` for GPUs)
                execution providers first when present)
tensorrt        the bundle's TensorRT engine                  ``tensorrt``, cuda-python, a GPU, an
                                                              engine (``gandapt-export --engine``)
torch           the source model, eagerly (the reference)     torch and the source checkpoint
==============  ===========================================  ====================================

``auto`` picks tensorrt when it can run the graph, else onnxruntime. Importing this package imports
neither torch nor tensorrt nor onnxruntime: each backend module loads its library when opened.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, List, Optional, Union

from gandapt.errors import GandaptError
from gandapt.runtime.backends.base import Backend

NAMES = ("onnxruntime", "tensorrt", "torch")
_CLASSES = {"onnxruntime": ("ort", "OrtBackend"), "tensorrt": ("trt", "TrtBackend"),
            "torch": ("torch_ref", "TorchBackend")}

__all__ = ["Backend", "NAMES", "available_backends", "open_backend", "resolve_backend"]


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: the module was set to None (made unimportable)
        return False


def _bundle(bundle: Any) -> Any:
    """An opened :class:`~gandapt.runtime.bundle.Bundle` from a Bundle or a bundle folder."""
    from gandapt.runtime.bundle import Bundle, open_bundle

    return bundle if isinstance(bundle, Bundle) else open_bundle(bundle)


def available_backends(bundle: Any = None) -> List[str]:
    """Backends that can run on this machine (and, given a bundle, with that bundle), in :data:`NAMES` order.

    Args:
        bundle: a :class:`~gandapt.runtime.bundle.Bundle` or bundle folder; None checks only the machine.
            tensorrt needs an engine for some graph of the bundle; torch needs its source model file.
    """
    from gandapt.runtime.backends.trt import tensorrt_missing

    b = None if bundle is None else _bundle(bundle)
    out = []
    if _has("onnxruntime"):
        out.append("onnxruntime")
    if not tensorrt_missing(b):
        out.append("tensorrt")
    if _has("torch") and (b is None or _torch_source_exists(b)):
        out.append("torch")
    return out


def _torch_source_exists(bundle: Any) -> bool:
    from gandapt.runtime.backends.torch_ref import source_file

    try:
        return source_file(bundle, "synthesis").is_file()
    except GandaptError:
        return False


def resolve_backend(name: str, bundle: Any, graph: str) -> str:
    """The concrete backend ``name`` stands for: ``auto`` → tensorrt when it can run ``graph``, else onnxruntime.

    Raises:
        GandaptError: an unknown name, or ``auto`` with neither tensorrt nor onnxruntime usable.
    """
    from gandapt.runtime.backends.trt import tensorrt_missing

    if name != "auto":
        if name not in NAMES:
            raise GandaptError(f"unknown backend {name!r}; use auto, {', '.join(NAMES)}")
        return name
    if not tensorrt_missing(_bundle(bundle), graph):
        return "tensorrt"
    if _has("onnxruntime"):
        return "onnxruntime"
    raise GandaptError("no inference backend: pip install onnxruntime (or onnxruntime-gpu), "
                       "or build a TensorRT engine with gandapt-export --engine")


def open_backend(name: str, bundle: Union[Any, str, os.PathLike], graph: str,
                 threads: Optional[int] = None) -> Backend:
    """Open ``graph`` of ``bundle`` on backend ``name``.

    Args:
        name: ``'auto'``, ``'onnxruntime'``, ``'tensorrt'`` or ``'torch'``.
        bundle: an opened :class:`~gandapt.runtime.bundle.Bundle` or a bundle folder.
        graph: ``'mapping'``, ``'synthesis'`` or ``'encoder'``.
        threads: CPU threads (onnxruntime intra-op threads; torch's process-wide setting); None: default.

    Returns:
        A :class:`Backend` (a context manager; ``close()`` when done).

    Raises:
        GandaptError: an unknown backend or graph, or one line saying what the backend lacks here.
    """
    b = _bundle(bundle)
    concrete = resolve_backend(name, b, graph)
    if concrete == "onnxruntime" and not _has("onnxruntime"):
        raise GandaptError("the onnxruntime backend needs onnxruntime: pip install onnxruntime (or onnxruntime-gpu)")
    b.manifest.io_spec(graph)  # an unknown graph fails here, before any library loads
    module, cls = _CLASSES[concrete]
    backend_cls = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return backend_cls(b, graph, threads=threads)
