"""``export_bundle``: a model (+ domain pack) → a validated bundle directory, written atomically.

Where the domains come from, in order:

1. ``domains=`` (a pack path or a :class:`~gandapt.pack.DomainPack`; the CLI's ``--domains PACK``);
2. the model's ``extra['domain_pack']`` — the contract for ``model.pt`` files the trainer writes: either
   the **bytes of a domain-pack safetensors file** exactly as :func:`gandapt.pack.save_pack` writes it,
   stored as a 1-D ``torch.uint8`` tensor (the native format holds no ``bytes``:
   ``torch.frombuffer(bytearray(data), dtype=torch.uint8)``), or a dict
   ``{'tensors': {'<domain>/<entry>': tensor}, 'metadata': {str: str}}`` holding the same keys and
   metadata a pack file stores;
3. neither: the bundle holds the base generator alone (no domains; synthesis has no domain input).

With an inversion encoder (``encoder=``, the CLI's ``--encoder``, else the model's ``extra['encoder']``;
see :mod:`gandapt.export.encoder_graph`) the bundle also gets ``encoder.onnx`` (image → ws).

The bundle is built in a temporary directory beside ``out`` and renamed into place only after every
graph passed validation, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

import numpy as np

import gandapt
from gandapt.errors import DomainError, GandaptError
from gandapt.export.encoder_graph import ENCODER_FILE, encoder_manifest_fields, resolve_encoder
from gandapt.export.manifest import MANIFEST, PACK_FILE, Manifest, graph_entry
from gandapt.export.spec import ExportSpec
from gandapt.io import temp_beside
from gandapt.pack import DomainPack, check_compatible, load_pack, save_pack

PathLike = Union[str, os.PathLike]
EXTRA_PACK_KEY = "domain_pack"


class _Progress:
    """``[i/n] message (seconds)`` lines on stderr, or nothing."""

    def __init__(self, enabled: bool, steps: int):
        self.enabled, self.steps, self.i, self.t0 = enabled, steps, 0, time.perf_counter()

    def step(self, message: str, seconds: Optional[float] = None) -> None:
        self.i += 1
        self.say(f"[{self.i}/{self.steps}] {message}" + (f" ({seconds:.1f} s)" if seconds is not None else ""))

    def say(self, line: str) -> None:
        if self.enabled:
            print(line, file=sys.stderr, flush=True)


def export_bundle(model: Any, out: PathLike, domains: Any = None, only: Optional[Iterable[str]] = None,
                  spec: ExportSpec = ExportSpec(), force: bool = False, progress: bool = True,
                  encoder: Any = None) -> Path:
    """Export ``model`` and its domains to a bundle directory.

    Args:
        model: a checkpoint path (any format :func:`gandapt.load` reads; normally a native
            ``model.pt``) or an already loaded :class:`~gandapt.checkpoint.Checkpoint`.
        out: the bundle directory to create.
        domains: a domain-pack path or :class:`~gandapt.pack.DomainPack`; None = the model's own pack
            (module docstring), or none.
        only: export just these domains of the pack (names).
        spec: the export settings.
        force: replace an existing bundle at ``out``.
        progress: print one line per step on stderr.
        encoder: an inversion-encoder file path or :class:`~gandapt.checkpoint.EncoderFile` to export
            as ``encoder.onnx``; None = the model's ``extra['encoder']``, or no encoder graph.

    Returns:
        ``out``.

    Raises:
        GandaptError: ``out`` exists (without ``force``) or is not a bundle, a pack made for another base,
            an unknown ``--only`` name, an encoder trained for another base model, an export, checker
            or validation failure.
    """
    t_start = time.perf_counter()
    out = Path(out)
    _check_out(out, force)
    t = time.perf_counter()
    ckpt = gandapt.load(model) if isinstance(model, (str, os.PathLike)) else model
    pack = _resolve_pack(ckpt, domains)
    check_compatible(pack, ckpt.config, ckpt.fingerprint)
    num_ws = ckpt.config.num_ws
    if spec.truncation_cutoff is not None and spec.truncation_cutoff > num_ws:
        raise GandaptError(f"--truncation-cutoff {spec.truncation_cutoff} is past the model's {num_ws} W+ rows; "
                           f"give 1..{num_ws}, or leave it out to truncate every row")
    pack = _subset(pack, only, ckpt.fingerprint)
    enc = resolve_encoder(ckpt, encoder)  # before any export: a wrong encoder fails at once
    layout = pack.layout()
    show = _Progress(progress, 6 if enc is None else 8)
    show.step(f"loaded {ckpt.path} ({ckpt.format}); {len(pack)} domain(s), stages "
              f"{','.join(layout.stages) or '(none)'}, D={layout.size}"
              + (f"; encoder {enc.path}" if enc is not None else ""), time.perf_counter() - t)

    stage = temp_beside(out, ".partial", directory=True)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(stage, 0o777 & ~umask)  # mkdtemp makes 0700; the bundle gets the usual directory mode
    try:
        graphs = _export_graphs(ckpt.G, layout, pack, spec, stage, show)
        if enc is not None:
            graphs["encoder"] = _export_encoder(enc, ckpt.G, spec, stage, show)
        t = time.perf_counter()
        save_pack(pack, stage / PACK_FILE)
        manifest = Manifest(
            gandapt_version=gandapt.__version__,
            created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            source={"path": str(ckpt.path), "format": ckpt.format, "fingerprint": ckpt.fingerprint},
            config=ckpt.config.to_dict(), layout=layout.to_dict(), stages=list(layout.stages),
            domains=[{"name": d.name, "index": i, "method": d.meta.get("method"), "stages": list(d.stages)}
                     for i, d in enumerate(pack.domains.values())],
            precision=spec.precision, modconv=spec.modconv, opset=spec.opset, noise_mode=spec.noise_mode,
            truncation_cutoff=spec.truncation_cutoff, graphs=graphs, plugin=_plugin_record(spec),
        )
        manifest.write(stage)
        Manifest.read(stage)  # the bundle we are about to publish must read back and verify
        show.step(f"wrote {PACK_FILE} and {MANIFEST}", time.perf_counter() - t)
        _publish(stage, out, force)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    show.say(f"bundle {out} ready; export took {time.perf_counter() - t_start:.1f} s")
    return out


def _plugin_record(spec: ExportSpec) -> Optional[Dict[str, Any]]:
    """The manifest's ``plugin`` field: which TensorRT plugin (and version) the synthesis graph needs."""
    if spec.modconv != "plugin":
        return None
    from gandapt.plugins_trt.modulated_conv.spec import PLUGIN_ID, VERSION

    return {"name": PLUGIN_ID, "version": VERSION, "aot": True}


def _export_graphs(G: Any, layout: Any, pack: DomainPack, spec: ExportSpec, stage: Path, show: _Progress) -> dict:
    """Export and validate mapping and synthesis into ``stage``; returns the manifest's ``graphs``."""
    from gandapt.export.onnx_graphs import export_graph, graph_io, prepared_generator
    from gandapt.export.validate import measured, reference_model, validate_graph

    prepared, layout = prepared_generator(G, spec, layout.stages)
    ref = reference_model(G)
    vectors = pack.vectors(layout=layout) if len(pack) else np.zeros((0, layout.size), np.float32)
    graphs = {}
    for name in ("mapping", "synthesis"):
        path = stage / f"{name}.onnx"
        t = time.perf_counter()
        model = export_graph(prepared, name, layout, spec, path)
        show.step(f"exported {path.name} ({path.stat().st_size / 1024:.0f} KiB, {len(model.graph.node)} nodes)",
                  time.perf_counter() - t)

        def diagnose(name: str = name) -> Path:  # only on an fp16 failure: a graph with per-layer outputs
            probe = stage / "probe" / f"{name}.onnx"
            export_graph(prepared, name, layout, spec, probe, probe=True)
            return probe

        t = time.perf_counter()
        validation = validate_graph(path, name, G, layout, vectors, spec, diagnose=diagnose, ref=ref)
        show.step(f"validated {path.name} in onnxruntime at batch {validation['batch']} "
                  f"({validation['domains']} domain row(s)): max |diff| {', '.join(measured(validation))}",
                  time.perf_counter() - t)
        inputs, outputs = graph_io(model)
        graphs[name] = graph_entry(path, inputs, outputs, spec.graph_batch(name), validation)
    shutil.rmtree(stage / "probe", ignore_errors=True)
    return graphs


def _export_encoder(enc: Any, G: Any, spec: ExportSpec, stage: Path, show: _Progress) -> dict:
    """Export and validate ``encoder.onnx`` into ``stage``; returns its manifest entry."""
    from gandapt.export.onnx_graphs import export_encoder, graph_io, prepared_encoder
    from gandapt.export.validate import measured, validate_encoder

    path = stage / ENCODER_FILE
    t = time.perf_counter()
    model = export_encoder(prepared_encoder(enc.E, spec), spec, path)
    show.step(f"exported {path.name} ({path.stat().st_size / 1024:.0f} KiB, {len(model.graph.node)} nodes)",
              time.perf_counter() - t)
    t = time.perf_counter()
    validation = validate_encoder(path, enc.E, G, spec)
    show.step(f"validated {path.name} in onnxruntime at batch {validation['batch']}: "
              f"max |diff| {', '.join(measured(validation))}", time.perf_counter() - t)
    inputs, outputs = graph_io(model)
    return {**graph_entry(path, inputs, outputs, spec.graph_batch("encoder"), validation),
            **encoder_manifest_fields(enc)}


def _check_out(out: Path, force: bool) -> None:
    """Refuse an existing ``out`` without ``force``, and anything but a bundle or empty dir with it."""
    if not out.exists():
        return
    if not force:
        raise GandaptError(f"{out} already exists; pass --force to replace it")
    if out.is_dir() and ((out / MANIFEST).is_file() or not any(out.iterdir())):
        return
    raise GandaptError(f"{out} exists and is not a gandapt bundle; --force replaces only bundles, "
                       "so remove it yourself or pick another --out")


def _publish(stage: Path, out: Path, force: bool) -> None:
    """Rename ``stage`` to ``out``; an old bundle moves aside first and is deleted after."""
    old = None
    if out.exists():
        _check_out(out, force)  # it may have appeared while we exported
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    try:
        os.replace(stage, out)
    except OSError:
        if old is not None:
            os.replace(old, out)  # put the previous bundle back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _resolve_pack(ckpt: Any, domains: Any) -> DomainPack:
    """The pack from ``domains``, else the model's ``extra['domain_pack']``, else an empty pack."""
    if isinstance(domains, DomainPack):
        return domains
    if domains is not None:
        return load_pack(domains)
    stored = (ckpt.extra or {}).get(EXTRA_PACK_KEY)
    if stored is None:
        return DomainPack([], ckpt.config, ckpt.fingerprint, source="(no domains)")
    if isinstance(stored, dict) and set(stored) >= {"tensors", "metadata"}:
        from safetensors.numpy import save

        tensors = {k: np.ascontiguousarray(_numpy(v), dtype=np.float32) for k, v in stored["tensors"].items()}
        stored = save(tensors, metadata={str(k): str(v) for k, v in stored["metadata"].items()})
    if hasattr(stored, "dtype") and str(stored.dtype) in ("torch.uint8", "uint8"):
        stored = _numpy(stored).tobytes()
    if not isinstance(stored, (bytes, bytearray)):
        raise GandaptError(f"{ckpt.path}: extra['{EXTRA_PACK_KEY}'] is a {type(stored).__name__}; expected a uint8 tensor "
                           "of domain-pack file bytes or {'tensors', 'metadata'}: re-save the model with gandapt-train")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pack.safetensors"
        path.write_bytes(bytes(stored))
        pack = load_pack(path)
    pack.source = f"{ckpt.path} (extra['{EXTRA_PACK_KEY}'])"
    return pack


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _subset(pack: DomainPack, only: Optional[Iterable[str]], fingerprint: str) -> DomainPack:
    """The pack restricted to ``only`` (pack order kept), stamped with the base fingerprint."""
    names = list(pack.names)
    if only is not None:
        wanted = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
        if not wanted:
            raise DomainError(f"--only names no domain; give comma-separated names from: {', '.join(pack.names)}, "
                              "or leave --only out to export them all")
        dup = sorted({n for n in wanted if wanted.count(n) > 1})
        if dup:
            raise DomainError(f"--only lists {', '.join(map(repr, dup))} more than once; name each domain once")
        unknown = [n for n in wanted if n not in pack]
        if unknown:
            raise DomainError(f"unknown domain(s) {', '.join(map(repr, unknown))} in --only; "
                              f"available: {', '.join(pack.names) or '(none)'}")
        names = [n for n in names if n in wanted]
    return DomainPack([pack.domains[n] for n in names], pack.base_config, pack.base_fingerprint or fingerprint,
                      pack.meta, pack.layout_version, source=pack.source)
