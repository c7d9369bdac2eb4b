"""ONNX export of the domain encoder on its own: ``image [N, 3, R, R] → domain [N, D]``.

The graph ends in the ``s``-stage domain vector (s_scale = 1, s_shift = Δs), so the runtime feeds its
output straight into a synthesis graph whose layout has stage ``s`` — a new domain from a camera
frame or a picture with no training (reference/methods.md §6.3, §11.5 item 5). It reuses the
bundle's exporter (:func:`gandapt.export.onnx_graphs.export_module`: torch.export-based, dynamic
batch, onnx checker) and is validated like the bundle's graphs: onnxruntime at a batch different
from the trace, failing with the max difference.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from gandapt.errors import GandaptError
from gandapt.layout import DomainLayout
from gandapt.runtime.domain_image import META_KEY  # the runtime reads the record this module writes
from gandapt.trainer.degan.file import DomainEncoderFile
from gandapt.trainer.degan.model import STAGES, DomainEncoder, DomainVector


class DomainEncoderGraph(nn.Module):
    """``image [N, 3, R, R] → domain [N, D]`` (the ``s``-stage layout of the base model)."""

    def __init__(self, E: DomainEncoder, layout: DomainLayout):
        super().__init__()
        self.E, self.to_domain = E, DomainVector(layout, E.config)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.to_domain(self.E(image))


def export_domain_encoder(enc: DomainEncoderFile, path: Any, spec: Optional[Any] = None,
                          atol: float = 1e-4, provenance: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Export ``enc`` to ``path`` and check it in onnxruntime.

    Args:
        enc: the loaded domain encoder.
        path: the ``.onnx`` file to write (parents are created).
        spec: a :class:`gandapt.export.spec.ExportSpec` (default: fp32, the default opset); only
            fp32 is supported.
        atol: the largest allowed |onnxruntime − torch| on the validation batch.
        provenance: JSON-serialisable facts recorded with the file (e.g. the recipe that made it).

    Returns:
        ``{'path', 'layout': DomainLayout.to_dict(), 'max_abs_diff', 'base_fingerprint', 'input', 'output'}``
        (what a manifest records).

    Raises:
        GandaptError: the export failed, the graph fails its checks, or onnxruntime disagrees with torch.
    """
    import onnxruntime as ort

    from gandapt.export.onnx_graphs import export_module
    from gandapt.export.spec import ExportSpec

    spec = spec or ExportSpec()
    if spec.precision != "fp32":
        raise GandaptError("the domain encoder exports in fp32 only (it runs once per domain switch)")
    path = Path(path)
    layout = DomainLayout(enc.base_config, STAGES)
    graph = DomainEncoderGraph(copy.deepcopy(enc.E).cpu().eval().float().requires_grad_(False), layout)
    R = enc.config.img_resolution
    g = torch.Generator().manual_seed(spec.seed)
    feeds = {"image": torch.rand(spec.trace_batch, 3, R, R, generator=g) * 2 - 1}
    export_module(graph, feeds, ["domain"], "domain_encoder", spec, path, dynamic_batch=True)
    # validate at another batch with new inputs
    x = torch.rand(spec.validation_batch, 3, R, R, generator=g) * 2 - 1
    with torch.no_grad():
        ref = graph(image=x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["domain"], {"image": x.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    if not diff <= atol:
        raise GandaptError(f"domain_encoder.onnx differs from torch by {diff:.3g} (> {atol:g}) at batch "
                           f"{spec.validation_batch}; report this with the encoder's config")
    info = {"path": str(path), "layout": layout.to_dict(), "max_abs_diff": diff,
            "base_fingerprint": enc.base_fingerprint,
            "input": {"image": ["N", 3, R, R], "convention": "RGB in [-1, 1]"},
            "output": {"domain": ["N", layout.size]}}
    if provenance:
        info["provenance"] = dict(provenance)
    _stamp(path, {k: v for k, v in info.items() if k != "path"})
    return info


def _stamp(path: Path, meta: Dict[str, Any]) -> None:
    """Record ``meta`` in the ONNX file's metadata (``gandapt-run --domain-encoder`` reads the layout and the
    base model from it, so the file is usable on its own)."""
    import json

    import onnx

    from gandapt.io import atomic_path

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    with atomic_path(path, force=True) as tmp:
        onnx.save(model, str(tmp))
