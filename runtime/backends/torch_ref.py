"""The torch reference backend: the bundle's source model run eagerly in fp32 on the CPU.

It is what the other backends are checked against, so it shares nothing with the exported graphs:
the generator comes from the source checkpoint the manifest names (``source.path``, loaded with
:func:`gandapt.load` and checked against ``source.fingerprint``), in the ``reference`` modconv form,
with the bundle's domain stages so it takes the same ``domain [N, D]`` input; the encoder from the
file ``graphs.encoder.source`` names (:func:`gandapt.load_encoder`). Truncation cutoff and noise mode
are the manifest's. torch is imported when a backend is opened, never by importing this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np

from gandapt.errors import GandaptError
from gandapt.runtime.backends.base import Backend, Feed


def source_file(bundle: Any, graph: str) -> Path:
    """The file the torch backend loads for ``graph``: the generator checkpoint or the encoder file.

    A relative path is taken relative to the bundle folder when it is not found as given.

    Raises:
        GandaptError: the bundle records no source for ``graph``.
    """
    m = bundle.manifest
    if graph == "encoder":
        recorded = (m.graphs.get("encoder") or {}).get("source")
    else:
        recorded = (m.source or {}).get("path")
    if not recorded:
        raise GandaptError(f"bundle {bundle.path} records no source model for {graph}; use --backend onnxruntime")
    path = Path(recorded)
    if not path.exists() and not path.is_absolute() and (bundle.path / path).exists():
        path = bundle.path / path
    return path


def require_source(bundle: Any, graph: str) -> Path:
    """:func:`source_file`, refusing in one line when it does not exist on this machine."""
    path = source_file(bundle, graph)
    if not path.is_file():
        raise GandaptError(f"the torch backend needs the source model {path}; use --backend onnxruntime")
    return path


class TorchBackend(Backend):
    """The reference: ``G.mapping``, ``G.synthesis`` or the encoder in fp32, eval mode, no grad.

    Args:
        bundle: an opened :class:`~gandapt.runtime.bundle.Bundle`.
        graph: ``'mapping'``, ``'synthesis'`` or ``'encoder'``.
        threads: ``torch.set_num_threads`` (process-wide; None leaves torch's setting).

    Raises:
        GandaptError: no torch, a missing source file, or a source that is not the bundle's model.
    """

    name = "torch"

    def __init__(self, bundle: Any, graph: str, threads: Optional[int] = None):
        try:
            import torch
        except ImportError:
            raise GandaptError("the torch backend needs PyTorch (pip install torch); "
                               "use --backend onnxruntime") from None
        super().__init__(graph, bundle.manifest.io_spec(graph))
        path = require_source(bundle, graph)
        if threads:
            torch.set_num_threads(int(threads))
        self._torch = torch
        self._bound: Dict[str, Any] = {}  # name → torch tensor [r, ...] (shares memory with nothing fed)
        self._module, self._run = _load(bundle, graph, path)

    @property
    def instance_id(self) -> int:
        return id(self._module)

    def _bind(self, name: str, value: np.ndarray) -> None:
        self._bound[name] = self._torch.from_numpy(value.astype(np.float32))  # our own copy, fp32

    def _update(self, name: str, value: np.ndarray) -> None:
        self._bound[name].copy_(self._torch.from_numpy(np.asarray(value)))  # in place; casts

    def _infer(self, feed: Feed, batch: int) -> Dict[str, np.ndarray]:
        torch = self._torch
        args = {}
        for spec in self.io.inputs:
            if spec.name in feed:
                args[spec.name] = torch.from_numpy(np.ascontiguousarray(feed[spec.name], dtype=np.float32))
            else:
                t = self._bound[spec.name]
                args[spec.name] = t.expand(batch, *t.shape[1:]) if t.shape[0] != batch else t
        with torch.inference_mode():
            out = self._run(**args)
        return {self.io.outputs[0].name: out.float().numpy()}  # fresh tensor: no copy needed

    def _close(self) -> None:
        self._bound.clear()
        self._module = self._run = None


def _load(bundle: Any, graph: str, path: Path) -> "tuple[Any, Callable[..., Any]]":
    """``(module, run)`` for ``graph``; ``run(**inputs)`` takes the graph's input names."""
    import gandapt

    m = bundle.manifest
    if graph == "encoder":
        from gandapt.export.encoder_graph import encoder_fingerprint

        enc = gandapt.load_encoder(path)
        want = m.graphs["encoder"].get("fingerprint")
        if want and encoder_fingerprint(enc) != want:
            raise GandaptError(f"the torch backend's encoder {path} is not the one in bundle {bundle.path} "
                               f"(fingerprint {encoder_fingerprint(enc)} vs {want}); use --backend onnxruntime")
        E = enc.E.eval().float()
        return E, lambda image: E(image)

    ckpt = gandapt.load(path)
    want = (m.source or {}).get("fingerprint")
    if want and ckpt.fingerprint != want:
        raise GandaptError(f"the torch backend's source model {path} is not the model bundle {bundle.path} was "
                           f"exported from (fingerprint {ckpt.fingerprint} vs {want}); use --backend onnxruntime")
    G = ckpt.G.eval().float()
    if graph == "mapping":
        cutoff = m.truncation_cutoff
        return G.mapping, lambda z, truncation_psi: G.mapping(z, truncation_psi=truncation_psi,
                                                             truncation_cutoff=cutoff)
    if graph != "synthesis":
        raise GandaptError(f"unknown graph {graph!r}; use mapping, synthesis or encoder")
    G.synthesis.set_domain_stages(tuple(bundle.layout.stages))  # same [N, D] subset layout as the graph
    G.synthesis.set_modconv_form("reference")
    noise_mode = m.noise_mode
    if bundle.layout.size:
        return G.synthesis, lambda ws, domain: G.synthesis(ws, domain=domain, noise_mode=noise_mode)
    return G.synthesis, lambda ws: G.synthesis(ws, noise_mode=noise_mode)
