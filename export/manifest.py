"""``manifest.json``: what a bundle holds and how to feed it (json and hashlib only; no torch, no numpy).

A bundle is self-describing: the runtime, the TensorRT engine builder and the Triton repository
writer read everything from here. Layout (``gandapt_bundle`` 1)::

    {"gandapt_bundle": 1, "gandapt_version": "0.1.0", "created": "2026-11-22T13:40:00Z",
     "source": {"path", "format", "fingerprint"},
     "config": GeneratorConfig.to_dict(), "layout": DomainLayout.to_dict() of the graph's stages,
     "stages": [...], "domains": [{"name", "index", "method", "stages"}],
     "precision": "fp32"|"fp16", "modconv": "decomposed"|"grouped"|"plugin", "opset": 18,
     "noise_mode": "const", "truncation_cutoff": null|int,
     "graphs": {"mapping"|"synthesis"|"encoder": {"file", "inputs": [{"name", "dtype", "shape"}], "outputs": [...],
                "batch": null|int, "bytes", "sha256",
                "validation": {"batch", "domains", "max_abs_diff": {out: x}, "tolerance": {...}}}},
     "domain_pack": "domains.safetensors", "plugin": null, "engine": null}

``shape`` entries are ints or ``"N"`` (the dynamic batch); ``batch`` is null for dynamic-batch
graphs and the fixed batch otherwise. Every tensor's dtype is a numpy dtype name.

The optional ``encoder`` graph (``image [N, 3, R, R]`` → ``ws``; its validation has no ``domains``)
also records how to feed it and what it is::

    "resolution": R, "input_convention": "RGB in [-1, 1]",
    "crop": {"mode": "face", "module": "gandapt.runtime.crop", "face_scale", "face_shift"},
    "fingerprint": "e1:…", "base_fingerprint": "g2:…" (= source.fingerprint), "source": where it came from
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from gandapt.errors import GandaptError
from gandapt.io import atomic_path

BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
PACK_FILE = "domains.safetensors"
GRAPHS = ("mapping", "synthesis")  # always present; "encoder" is optional

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output.

    Attributes:
        name: tensor name in the graph.
        dtype: numpy dtype name ('float32', 'float16').
        shape: dims; ``"N"`` marks the dynamic batch axis.
    """

    name: str
    dtype: str
    shape: Tuple[Union[int, str], ...]

    def concrete(self, batch: int) -> Tuple[int, ...]:
        """The shape with ``"N"`` replaced by ``batch``."""
        return tuple(batch if d == "N" else int(d) for d in self.shape)

    @property
    def dynamic_batch(self) -> bool:
        """True when the leading axis is the dynamic batch."""
        return bool(self.shape) and self.shape[0] == "N"


@dataclass(frozen=True)
class GraphIO:
    """IO of one bundle graph (see :func:`io_spec`)."""

    file: str
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    batch: Optional[int]

    def input(self, name: str) -> Optional[TensorSpec]:
        """The input called ``name``, or None (a synthesis graph without domain stages has no ``domain``)."""
        return next((t for t in self.inputs if t.name == name), None)


@dataclass
class Manifest:
    """The parsed ``manifest.json`` (field meanings in the module docstring)."""

    gandapt_version: str
    created: str
    source: Dict[str, Any]
    config: Dict[str, Any]
    layout: Dict[str, Any]
    stages: List[str]
    domains: List[Dict[str, Any]]
    precision: str
    modconv: str
    opset: int
    noise_mode: str
    truncation_cutoff: Optional[int]
    graphs: Dict[str, Dict[str, Any]]
    domain_pack: Optional[str] = PACK_FILE
    plugin: Optional[Dict[str, Any]] = None
    engine: Optional[Dict[str, Any]] = None
    gandapt_bundle: int = BUNDLE_VERSION

    # ---- IO ------------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict, ``gandapt_bundle`` first."""
        d = dataclasses.asdict(self)
        return {"gandapt_bundle": d.pop("gandapt_bundle"), **d}

    def write(self, bundle_dir: PathLike) -> Path:
        """Write ``bundle_dir/manifest.json`` atomically (overwrites: the bundle is the exporter's own)."""
        path = Path(bundle_dir) / MANIFEST
        with atomic_path(path, force=True) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: Dict[str, Any], where: str = "manifest") -> "Manifest":
        """Parse and check a manifest dict.

        Raises:
            GandaptError: an unknown bundle version or a missing field.
        """
        if not isinstance(d, dict):
            raise GandaptError(f"{where} is not a JSON object; re-export the bundle")
        version = d.get("gandapt_bundle")
        if version != BUNDLE_VERSION:
            raise GandaptError(f"{where} has bundle version {version!r} but this gandapt reads version "
                               f"{BUNDLE_VERSION}; re-export the bundle with this gandapt")
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(d))
        if missing:
            raise GandaptError(f"{where} lacks {', '.join(missing)}; re-export the bundle")
        for name, g in (d.get("graphs") or {}).items():
            lacking = [k for k in ("file", "inputs", "outputs", "sha256") if k not in (g or {})]
            if lacking:
                raise GandaptError(f"{where}: graph {name!r} lacks {', '.join(lacking)}; re-export the bundle")
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def read(cls, bundle_dir: PathLike, verify: bool = True) -> "Manifest":
        """Read ``bundle_dir/manifest.json``; with ``verify`` also check the files it lists.

        Raises:
            GandaptError: no manifest, not JSON, unknown version, missing fields, and with ``verify`` a
                missing graph or pack file or a graph whose sha256 differs.
        """
        bundle = Path(bundle_dir)
        path = bundle / MANIFEST
        if not path.is_file():
            raise GandaptError(f"{bundle} is not a gandapt bundle (no {MANIFEST}); export one with gandapt-export")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise GandaptError(f"{path} is not valid JSON ({e.__class__.__name__}); re-export the bundle") from None
        manifest = cls.from_dict(data, str(path))
        if verify:
            manifest.verify(bundle)
        return manifest

    def verify(self, bundle_dir: PathLike) -> None:
        """Check every listed file exists and every graph matches its sha256.

        Raises:
            GandaptError: one line naming the missing or changed file.
        """
        bundle = Path(bundle_dir)
        for name, g in self.graphs.items():
            path = bundle / g["file"]
            if not path.is_file():
                raise GandaptError(f"bundle {bundle}: {name} graph {g['file']} is missing; re-export the bundle")
            digest = sha256_file(path)
            if digest != g["sha256"]:
                raise GandaptError(f"bundle {bundle}: {g['file']} has sha256 {digest[:12]}… but the manifest "
                                   f"says {g['sha256'][:12]}…; the file was changed, re-export the bundle")
        if self.domain_pack and not (bundle / self.domain_pack).is_file():
            raise GandaptError(f"bundle {bundle}: domain pack {self.domain_pack} is missing; re-export the bundle")

    # ---- access --------------------------------------------------------------------------------
    def io_spec(self, graph: str) -> GraphIO:
        """IO of ``graph`` ('mapping', 'synthesis' or 'encoder') for runtimes and repository writers.

        Raises:
            GandaptError: the bundle has no such graph.
        """
        return io_spec(self.to_dict(), graph)

    @property
    def domain_names(self) -> List[str]:
        """Domain names in index order (row ``index`` of the pack's vectors)."""
        return [d["name"] for d in sorted(self.domains, key=lambda d: d["index"])]


def io_spec(manifest: Union[Manifest, Dict[str, Any]], graph: str) -> GraphIO:
    """IO of one graph from a :class:`Manifest` or a raw manifest dict.

    Raises:
        GandaptError: the manifest has no such graph.
    """
    d = manifest.to_dict() if isinstance(manifest, Manifest) else manifest
    g = (d.get("graphs") or {}).get(graph)
    if g is None:
        raise GandaptError(f"this bundle has no {graph} graph (it has {', '.join(d.get('graphs') or {}) or 'none'}); "
                           "re-export it with gandapt-export")

    def specs(items: List[Dict[str, Any]]) -> Tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in items)

    return GraphIO(g["file"], specs(g["inputs"]), specs(g["outputs"]), g.get("batch"))


def update_manifest(bundle_dir: PathLike, **fields: Any) -> Manifest:
    """Set top-level fields (``engine``, ``plugin``) of an existing bundle's manifest, atomically.

    Raises:
        GandaptError: no valid manifest, or a field the manifest does not have.
    """
    manifest = Manifest.read(bundle_dir, verify=False)
    unknown = [k for k in fields if not hasattr(manifest, k)]
    if unknown:
        raise GandaptError(f"manifest has no field {', '.join(unknown)}")
    manifest = dataclasses.replace(manifest, **fields)
    manifest.write(bundle_dir)
    return manifest


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def graph_entry(path: PathLike, inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]],
                batch: Optional[int], validation: Dict[str, Any]) -> Dict[str, Any]:
    """The manifest entry of one written graph file (size and sha256 taken from the file)."""
    path = Path(path)
    return {"file": path.name, "inputs": inputs, "outputs": outputs, "batch": batch,
            "bytes": path.stat().st_size, "sha256": sha256_file(path), "validation": validation}
