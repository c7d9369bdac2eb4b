"""Re-run exported graphs in onnxruntime (CPU EP) and compare them with the PyTorch fp32 model.

Validation always uses new inputs at a batch size other than the trace's (a fixed-batch graph: its
own batch), per-sample truncation ψ, and for synthesis several domains mixed in one batch (every
domain of the bundle plus the identity, cycling over the rows). The reference is an independent
PyTorch path: the fp32 generator with the *full* domain layout and the ``reference`` modconv form,
fed the subset vectors converted to the full layout, so the stage subset, the form and the precision
are all checked at once.

The encoder graph is checked the same way against the fp32 PyTorch encoder in eval mode, on renders
of the generator (the images it is meant to invert) at the validation batch.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from gandapt.errors import GandaptError
from gandapt.export.spec import ExportSpec
from gandapt.layout import DomainLayout, full_layout


def session(path: Path, threads: int = 2) -> Any:
    """An onnxruntime CPU session for ``path`` (``threads`` intra-op threads).

    A graph with ``gandapt::ModulatedConv2d`` nodes (the plugin form) runs through their CPU reference
    registered with onnxruntime-extensions (:mod:`gandapt.plugins_trt.modulated_conv.ort_op`).
    """
    import onnxruntime as ort

    from gandapt.export.engine import plugin_ops

    if plugin_ops(path):
        from gandapt.plugins_trt import check_plugins
        from gandapt.plugins_trt.modulated_conv.ort_op import session_options

        check_plugins(plugin_ops(path))
        opts = session_options(threads)
    else:
        opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3  # fp16 graphs log the Casts the CPU EP inserts; not news to the user
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def validation_inputs(G: nn.Module, graph: str, layout: DomainLayout, domains: np.ndarray, batch: int,
                      seed: int) -> Dict[str, np.ndarray]:
    """New float32 inputs for ``graph`` at ``batch``.

    Args:
        G: the fp32 generator (its mapping makes realistic ws for synthesis).
        graph: 'mapping' or 'synthesis'.
        layout: the graph's subset layout.
        domains: ``[K, D]`` domain vectors of the bundle in ``layout`` (K may be 0); rows cycle
            through them and the identity so one batch mixes domains.
        batch: rows.
        seed: input seed.
    """
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, G.config.z_dim, generator=g)
    psi = torch.linspace(0.5, 1.0, batch)  # per-sample ψ: catches a ψ broadcast over the batch
    if graph == "mapping":
        return {"z": z.numpy(), "truncation_psi": psi.numpy()}
    with torch.no_grad():
        ws = G.mapping(z, truncation_psi=psi)
    feeds = {"ws": ws.numpy()}
    if layout.size:
        rows = np.concatenate([domains.reshape(-1, layout.size), layout.identity(1)])
        feeds["domain"] = np.ascontiguousarray(rows[np.arange(batch) % len(rows)])
    return feeds


def reference_model(G: nn.Module) -> nn.Module:
    """fp32 copy of ``G`` with every domain stage and the reference modconv form."""
    ref = copy.deepcopy(G).eval().float()
    ref.synthesis.set_domain_stages(full_layout(ref.config).stages)
    ref.synthesis.set_modconv_form("reference")
    return ref


def reference_outputs(ref: nn.Module, graph: str, feeds: Dict[str, np.ndarray], layout: DomainLayout,
                      cutoff: Optional[int], probes: Sequence[str] = ()) -> Dict[str, np.ndarray]:
    """Torch outputs for ``feeds`` (and, with ``probes``, the named layers' outputs as ``probe.<name>``)."""
    seen: Dict[str, np.ndarray] = {}

    def hook(name: str):
        def record(_module, _inputs, out) -> None:  # returns None: a hook's return value replaces the output
            seen[f"probe.{name}"] = out.detach().numpy()
        return record

    handles = [ref.get_submodule(name).register_forward_hook(hook(name)) for name in probes]
    try:
        with torch.no_grad():
            if graph == "mapping":
                out = ref.mapping(torch.from_numpy(feeds["z"]), truncation_psi=torch.from_numpy(feeds["truncation_psi"]),
                                  truncation_cutoff=cutoff)
                return {"ws": out.numpy(), **seen}
            domain = None
            if "domain" in feeds:  # the graph's subset vector re-laid into the full layout
                domain = torch.from_numpy(layout.convert(feeds["domain"], full_layout(ref.config)))
            out = ref.synthesis(torch.from_numpy(feeds["ws"]), domain=domain, noise_mode="const")
            return {"img": out.numpy(), **seen}
    finally:
        for h in handles:
            h.remove()


def compare(outputs: Dict[str, np.ndarray], expected: Dict[str, np.ndarray], atol: float) -> Dict[str, Dict[str, float]]:
    """Per-output ``{'max_abs_diff', 'scale', 'limit'}`` with ``limit = atol · max(1, max |expected|)``."""
    out = {}
    for name, ref in expected.items():
        got = outputs[name]
        if got.shape != ref.shape:
            raise GandaptError(f"output {name} has shape {list(got.shape)} in onnxruntime but {list(ref.shape)} in "
                               "torch; report this")
        scale = max(1.0, float(np.abs(ref).max()))
        diff = float(np.abs(got.astype(np.float64) - ref).max())
        out[name] = {"max_abs_diff": diff if np.isfinite(diff) else float("inf"), "scale": scale,
                     "limit": atol * scale}
    return out


def validate_graph(path: Path, graph: str, G: nn.Module, layout: DomainLayout, domains: np.ndarray,
                   spec: ExportSpec, diagnose: Optional[Callable[[], Path]] = None,
                   ref: Optional[nn.Module] = None) -> Dict[str, Any]:
    """Run ``path`` in onnxruntime against torch; raise when an output is over tolerance.

    Args:
        path: the exported graph.
        graph: 'mapping' or 'synthesis'.
        G: the fp32 source generator (not the prepared export copy).
        layout: the graph's subset layout.
        domains: ``[K, D]`` domain vectors in ``layout`` mixed into the batch.
        spec: the export settings (precision, tolerances, batches, cutoff, seed).
        diagnose: for fp16, a callable exporting the same graph with per-layer probe outputs and
            returning its path; called only on failure, to name the first divergent layer.
        ref: a :func:`reference_model` to reuse (built when None).

    Returns:
        The manifest's ``validation`` entry: ``{'batch', 'domains', 'max_abs_diff': {out: x},
        'tolerance': {'atol', 'relative_to', 'limit': {out: x}}}``.

    Raises:
        GandaptError: one line with every output's max |diff| and limit, and for fp16 the first layer
            over tolerance.
    """
    ref = reference_model(G) if ref is None else ref
    batch = spec.graph_batch(graph) or spec.validation_batch
    feeds = validation_inputs(G, graph, layout, domains, batch, spec.seed + 1)  # not the trace's inputs
    expected = reference_outputs(ref, graph, feeds, layout, spec.truncation_cutoff)

    def where() -> str:
        if spec.precision == "fp16" and diagnose is not None:
            return "; " + first_divergence(diagnose(), graph, ref, feeds, layout, spec)
        return ""

    result = check_outputs(path, feeds, expected, spec, batch, f"{spec.modconv}, {spec.precision}", where)
    n_domains = len(np.unique(feeds["domain"], axis=0)) if "domain" in feeds else 0
    return {"batch": batch, "domains": n_domains, **result}


def validate_encoder(path: Path, E: nn.Module, G: nn.Module, spec: ExportSpec) -> Dict[str, Any]:
    """Run an exported encoder in onnxruntime against the PyTorch encoder; raise when over tolerance.

    Args:
        path: the exported ``encoder.onnx``.
        E: the source encoder (any mode, any precision: the reference is an fp32 eval-mode copy).
        G: the fp32 generator whose renders are the test images.
        spec: the export settings (precision, tolerances, validation batch, seed).

    Returns:
        The manifest's ``validation`` entry: ``{'batch', 'max_abs_diff': {'ws': x}, 'tolerance'}``.

    Raises:
        GandaptError: one line with the max |diff| of ``ws`` and its limit.
    """
    ref = copy.deepcopy(E).cpu().eval().float()
    batch = spec.validation_batch  # the trace used spec.trace_batch: this checks the dynamic axis
    feeds = {"image": encoder_inputs(G, batch, spec.seed + 1)}
    with torch.no_grad():
        expected = {"ws": ref(torch.from_numpy(feeds["image"])).numpy()}
    return {"batch": batch, **check_outputs(path, feeds, expected, spec, batch, spec.precision)}


def encoder_inputs(G: nn.Module, batch: int, seed: int) -> np.ndarray:
    """``batch`` renders of ``G`` (const noise, ψ from 0.5 to 1), clipped to [-1, 1]: float32 [N, 3, R, R]."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, G.config.z_dim, generator=g)
    with torch.no_grad():
        ws = G.mapping(z, truncation_psi=torch.linspace(0.5, 1.0, batch))
        img = G.synthesis(ws, noise_mode="const").clamp(-1, 1)  # [N, C, R, R]
    return np.ascontiguousarray(img.float().numpy())


def check_outputs(path: Path, feeds: Dict[str, np.ndarray], expected: Dict[str, np.ndarray], spec: ExportSpec,
                  batch: int, label: str, where: Callable[[], str] = lambda: "") -> Dict[str, Any]:
    """Run ``path`` on ``feeds`` in onnxruntime and compare every output with ``expected``.

    Args:
        path: the graph.
        feeds: its inputs.
        expected: ``{output: torch result}``.
        spec: for the tolerance (:attr:`ExportSpec.atol`).
        batch: the batch of ``feeds``, for the message.
        label: what was exported ('decomposed, fp16'), for the message.
        where: called only on failure; a suffix for the message (the fp16 divergence report).

    Returns:
        ``{'max_abs_diff': {out: x}, 'tolerance': {'atol', 'relative_to', 'limit': {out: x}}}``.

    Raises:
        GandaptError: one line with every output over tolerance.
    """
    sess = session(path)
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    diffs = compare(got, expected, spec.atol)
    bad = {k: v for k, v in diffs.items() if not v["max_abs_diff"] <= v["limit"]}
    if bad:
        detail = ", ".join(f"{k} max |diff| {v['max_abs_diff']:.3g} > {v['limit']:.3g}" for k, v in bad.items())
        raise GandaptError(f"{path.name} ({label}) does not match torch at batch {batch}: "
                           f"{detail} (atol {spec.atol:g} x max(1, |torch|)){where()}")
    return {
        "max_abs_diff": {k: v["max_abs_diff"] for k, v in diffs.items()},
        "tolerance": {"atol": spec.atol, "relative_to": "max(1, max|torch|)",
                      "limit": {k: v["limit"] for k, v in diffs.items()}},
    }


def first_divergence(probe_path: Path, graph: str, ref: nn.Module, feeds: Dict[str, np.ndarray],
                     layout: DomainLayout, spec: ExportSpec) -> str:
    """Name the first layer (forward order) whose output is over tolerance in a probed graph.

    Returns:
        ``"first divergent layer: <name> (max |diff| x > limit)"``, or a sentence saying no single
        layer is over tolerance (the error accumulates).
    """
    sess = session(probe_path)
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, feeds)))
    layers = [n[len("probe."):] for n in names if n.startswith("probe.")]
    expected = reference_outputs(ref, graph, feeds, layout, spec.truncation_cutoff, probes=layers)
    diffs = compare({k: got[k] for k in expected}, expected, spec.atol)
    for name in layers:
        d = diffs[f"probe.{name}"]
        if not d["max_abs_diff"] <= d["limit"]:
            return f"first divergent layer: {name} (max |diff| {d['max_abs_diff']:.3g} > {d['limit']:.3g})"
    return "no single layer is over tolerance (the error accumulates over layers)"


def measured(diffs: Dict[str, Any]) -> List[str]:
    """Short ``name=diff`` strings for progress output."""
    return [f"{k} {v:.2g}" for k, v in diffs["max_abs_diff"].items()]
