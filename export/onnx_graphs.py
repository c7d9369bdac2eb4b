"""Export the mapping, synthesis and encoder networks to ONNX with the torch.export-based exporter.

Why that exporter: the legacy TorchScript exporter refuses the decomposed synthesis with a dynamic
batch ("convolution for kernel of unknown shape", from the blur filter expanded per channel), and it
cannot export the grouped form either; ``torch.onnx.export(..., dynamo=True)`` exports both, keeps
the batch dynamic for the decomposed form, and its onnxscript optimizer folds constants. Measured on
the 64 px embedded config: 3.4-4.3x fewer nodes, files 14-43 % smaller, onnxruntime CPU latency
18-35 % lower; a second optimizer pass changes nothing. Conv weights come out as initializers, the
up-sampling ConvTranspose weights as Reshape(Transpose(initializer)): constant, folded by
onnxruntime and TensorRT at load. Raising the optimizer's fold-size limits makes those initializers
too but stores transposed copies beside the originals (file +28 %), so the defaults stay.

Graphs (all IO float32; fp16 graphs cast at the boundary and compute in float16):

- ``mapping``: ``z [N, z_dim]``, ``truncation_psi [N]`` → ``ws [N, num_ws, w_dim]``.
- ``synthesis``: ``ws [N, num_ws, w_dim]``, ``domain [N, D]`` → ``img [N, img_channels, R, R]``;
  D is the size of the subset layout of the stages the bundle's domains use, and a graph for no
  stages has no ``domain`` input.
- ``encoder`` (when the bundle has an inversion encoder): ``image [N, 3, R, R]`` (RGB in [-1, 1]) →
  ``ws [N, num_ws, w_dim]``; BatchNorm in eval mode, i.e. folded to its running statistics.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from gandapt.errors import GandaptError, one_line
from gandapt.export.spec import ExportSpec
from gandapt.layout import DomainLayout

Probes = Sequence[Tuple[str, nn.Module]]


class MappingGraph(nn.Module):
    """``z, truncation_psi → ws`` with the truncation cutoff fixed (see :mod:`gandapt.mapping`)."""

    def __init__(self, mapping: nn.Module, truncation_cutoff: Optional[int], dtype: torch.dtype,
                 probes: Probes = ()):
        super().__init__()
        self.mapping, self.cutoff, self.dtype, self.probes = mapping, truncation_cutoff, dtype, list(probes)

    def forward(self, z: torch.Tensor, truncation_psi: torch.Tensor) -> Any:
        """[N, z_dim], [N] → [N, num_ws, w_dim] (+ probe outputs when probing)."""
        def run():
            psi = truncation_psi.to(self.dtype)
            return self.mapping(z.to(self.dtype), truncation_psi=psi, truncation_cutoff=self.cutoff).float()
        return _with_probes(run, self.probes)


class SynthesisGraph(nn.Module):
    """``ws [, domain] → img`` with the noise mode fixed; ``domain`` only when the layout has stages."""

    def __init__(self, synthesis: nn.Module, noise_mode: str, dtype: torch.dtype, probes: Probes = ()):
        super().__init__()
        self.synthesis, self.noise_mode, self.dtype, self.probes = synthesis, noise_mode, dtype, list(probes)

    def forward(self, ws: torch.Tensor, domain: Optional[torch.Tensor] = None) -> Any:
        """[N, num_ws, w_dim], [N, D] → [N, C, R, R] (+ probe outputs when probing)."""
        def run():
            dom = None if domain is None else domain.to(self.dtype)
            return self.synthesis(ws.to(self.dtype), domain=dom, noise_mode=self.noise_mode).float()
        return _with_probes(run, self.probes)


class EncoderGraph(nn.Module):
    """``image → ws`` of a :class:`~gandapt.encoder.Encoder` (see :func:`prepared_encoder`)."""

    def __init__(self, encoder: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.encoder, self.dtype = encoder, dtype

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """[N, 3, R, R] in [-1, 1] → [N, num_ws, w_dim] (float32 at the boundary, ``dtype`` inside)."""
        return self.encoder(image.to(self.dtype)).float()


def _with_probes(run, probes: Probes) -> Any:
    """Run ``run()``; with probes, also return each probed module's output (float32) in call order.

    The exporter traces Python (non-strict), so forward hooks run during tracing and their tensors
    become extra graph outputs: the layer-wise view the fp16 divergence report needs.
    """
    if not probes:
        return run()
    seen: List[torch.Tensor] = []
    # append() returns None, so the hook leaves each module's output unchanged.
    handles = [m.register_forward_hook(lambda _m, _i, out: seen.append(out.float())) for _, m in probes]
    try:
        out = run()
    finally:
        for h in handles:
            h.remove()
    return (out, *seen)


def prepared_generator(G: nn.Module, spec: ExportSpec, stages: Sequence[str]) -> Tuple[nn.Module, DomainLayout]:
    """A copy of ``G`` set up for export: form, domain stages, eval mode, precision.

    Returns:
        ``(copy, layout)`` where ``layout`` is the subset :class:`DomainLayout` of ``stages``.
    """
    G = copy.deepcopy(G).eval().float()
    layout = G.synthesis.set_domain_stages(tuple(stages))
    G.synthesis.set_modconv_form(spec.modconv)
    if spec.precision == "fp16":
        G = G.half()
    for p in G.parameters():
        p.requires_grad_(False)
    return G, layout


def prepared_encoder(E: nn.Module, spec: ExportSpec) -> nn.Module:
    """A copy of encoder ``E`` set up for export: eval mode (BatchNorm uses its running statistics,
    whatever mode ``E`` is in), frozen, in the precision of ``spec``."""
    E = copy.deepcopy(E).cpu().eval().float()
    if spec.precision == "fp16":
        E = E.half()
    for p in E.parameters():
        p.requires_grad_(False)
    return E


def graph_dtype(spec: ExportSpec) -> torch.dtype:
    """Compute dtype of the graphs of ``spec``."""
    return torch.float16 if spec.precision == "fp16" else torch.float32


def mapping_probes(G: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(name, module)`` of every mapping layer in forward order (for the divergence report)."""
    return [(f"mapping.fc{i}", getattr(G.mapping, f"fc{i}")) for i in range(G.mapping.num_layers)]


def synthesis_probes(G: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(name, module)`` of every modulated layer in forward order (convs and ToRGB)."""
    return [(f"synthesis.{s.name}", G.synthesis.get_submodule(s.name)) for s in G.config.layers()]


def example_inputs(G: nn.Module, graph: str, layout: DomainLayout, batch: int) -> Dict[str, torch.Tensor]:
    """Trace inputs of ``graph`` ('mapping' or 'synthesis'), float32 (values do not matter for tracing)."""
    cfg, g = G.config, torch.Generator().manual_seed(0)  # own generator: leave the global RNG alone
    if graph == "mapping":
        return {"z": torch.randn(batch, cfg.z_dim, generator=g), "truncation_psi": torch.full((batch,), 0.7)}
    feeds = {"ws": torch.randn(batch, cfg.num_ws, cfg.w_dim, generator=g)}
    if layout.size:
        feeds["domain"] = torch.from_numpy(layout.identity(batch))
    return feeds


def export_graph(G: nn.Module, graph: str, layout: DomainLayout, spec: ExportSpec, path: Path,
                 probe: bool = False, optimize: bool = True) -> Any:
    """Export one graph of a :func:`prepared_generator` copy to ``path`` and check it.

    Args:
        G: the prepared generator (form, stages and precision already set).
        graph: 'mapping' or 'synthesis'.
        layout: the subset layout ``G.synthesis`` was set to.
        spec: the export settings.
        path: the ``.onnx`` file to write.
        probe: add every layer's output as an extra graph output (``probe.<layer>``), for diagnosis.
        optimize: run the exporter's onnxscript optimizer (constant folding, dead-code removal).

    Returns:
        The checked ``onnx.ModelProto`` (imported lazily, hence typed ``Any``).

    Raises:
        GandaptError: the exporter failed, the checker refused the graph, an op is newer than the
            opset, or a decomposed graph computes a conv weight from its inputs.
    """
    dtype = graph_dtype(spec)
    if graph == "mapping":
        probes = mapping_probes(G) if probe else ()
        module = MappingGraph(G.mapping, spec.truncation_cutoff, dtype, probes)
        out_names = ["ws"]
    else:
        probes = synthesis_probes(G) if probe else ()
        module = SynthesisGraph(G.synthesis, spec.noise_mode, dtype, probes)
        out_names = ["img"]
    out_names += [f"probe.{name}" for name, _ in probes]
    fixed = spec.graph_batch(graph)
    feeds = example_inputs(G, graph, layout, fixed or spec.trace_batch)
    return export_module(module, feeds, out_names, graph, spec, path, dynamic_batch=fixed is None, optimize=optimize)


def export_encoder(E: nn.Module, spec: ExportSpec, path: Path, optimize: bool = True) -> Any:
    """Export a :func:`prepared_encoder` copy as ``image [N, 3, R, R] → ws [N, num_ws, w_dim]``.

    Same exporter, opset, optimizer and checks as :func:`export_graph`; the batch is always dynamic.

    Returns:
        The checked ``onnx.ModelProto``.

    Raises:
        GandaptError: as :func:`export_graph`.
    """
    R = E.config.img_resolution
    g = torch.Generator().manual_seed(0)
    feeds = {"image": torch.rand(spec.trace_batch, 3, R, R, generator=g) * 2 - 1}  # [N, 3, R, R] in [-1, 1]
    return export_module(EncoderGraph(E, graph_dtype(spec)), feeds, ["ws"], "encoder", spec, path,
                         dynamic_batch=True, optimize=optimize)


def export_module(module: nn.Module, feeds: Dict[str, torch.Tensor], out_names: List[str], graph: str,
                  spec: ExportSpec, path: Path, dynamic_batch: bool = True, optimize: bool = True) -> Any:
    """Trace ``module(**feeds)`` with the torch.export-based exporter, check the graph, save it.

    Args:
        module: the graph module; its keyword inputs are the graph's inputs, in ``feeds`` order.
        feeds: example inputs (trace shapes; the values do not matter).
        out_names: graph output names, in the module's return order.
        graph: the graph's name, for messages ('mapping', 'synthesis', 'encoder').
        spec: the export settings (opset, precision, modconv for the checks).
        path: the ``.onnx`` file to write.
        dynamic_batch: make axis 0 of every input a dynamic ``N``; False keeps the trace batch.
        optimize: run the exporter's onnxscript optimizer.

    Returns:
        The checked ``onnx.ModelProto``.

    Raises:
        GandaptError: the exporter failed, or :func:`check_model` refused the graph.
    """
    import onnx

    dynamic = None
    if dynamic_batch:
        n = torch.export.Dim("N", min=1, max=65536)
        dynamic = {name: {0: n} for name in feeds}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracing chatter
            program = torch.onnx.export(
                module, (), kwargs=feeds, input_names=list(feeds), output_names=out_names,
                dynamic_shapes=dynamic, opset_version=spec.opset, dynamo=True, optimize=optimize,
                external_data=False, verbose=False,
            )
    except Exception as e:  # the exporter raises many types; the user needs one line
        form = "" if graph == "encoder" else f"{spec.modconv}, "
        raise GandaptError(f"ONNX export of {graph} ({form}{spec.precision}) failed: "
                           f"{one_line(e, 300)}; report this with the model's config") from None
    model = program.model_proto
    check_model(model, graph, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return model


def check_model(model: Any, graph: str, spec: ExportSpec) -> None:
    """onnx checker, opset and (decomposed form) constant conv weights.

    Raises:
        GandaptError: one line naming the failed check.
    """
    import onnx
    import onnx.defs

    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise GandaptError(f"{graph}.onnx fails the onnx checker: {one_line(e, 300)}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset != spec.opset:
        raise GandaptError(f"{graph}.onnx came out at opset {opset}, not the requested {spec.opset}; "
                           f"use --opset {opset}")
    for node in model.graph.node:
        if node.domain in ("", "ai.onnx"):
            try:
                onnx.defs.get_schema(node.op_type, opset)
            except onnx.defs.SchemaError:
                raise GandaptError(f"{graph}.onnx uses {node.op_type}, which opset {opset} does not have; "
                                   "use a newer --opset") from None
    if spec.modconv == "decomposed":
        computed = computed_conv_weights(model)
        if computed:
            raise GandaptError(f"{graph}.onnx computes conv weights from its inputs ({', '.join(computed[:3])}); "
                               "the decomposed form must keep them constant: report this")


def computed_conv_weights(model: Any) -> List[str]:
    """Names of Conv/ConvTranspose nodes whose weight depends on a graph input (empty = all constant)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    inputs = {i.name for i in model.graph.input}
    memo: Dict[str, bool] = {}

    def depends(name: str) -> bool:
        if name in memo:
            return memo[name]
        memo[name] = False  # guards cycles (none in a valid graph)
        node = producers.get(name)
        memo[name] = name in inputs or (node is not None and any(depends(i) for i in node.input if i))
        return memo[name]

    return [n.name or n.op_type for n in model.graph.node
            if n.op_type in ("Conv", "ConvTranspose") and depends(n.input[1])]


def graph_io(model: Any) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Inputs and outputs of an ONNX model as manifest entries.

    Returns:
        ``(inputs, outputs)``, each ``[{'name', 'dtype', 'shape'}]``: numpy dtype names, a symbolic
        dimension written ``"N"``.
    """
    from onnx import helper

    inits = {i.name for i in model.graph.initializer}

    def entry(v) -> Dict[str, Any]:
        t = v.type.tensor_type
        shape = [int(d.dim_value) if d.HasField("dim_value") else "N" for d in t.shape.dim]
        return {"name": v.name, "dtype": helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": shape}

    return ([entry(v) for v in model.graph.input if v.name not in inits],
            [entry(v) for v in model.graph.output if not v.name.startswith("probe.")])
