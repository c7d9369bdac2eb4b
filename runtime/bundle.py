"""A bundle as the runtime sees it: manifest, graph files, domain vectors. numpy only, no torch.

:func:`open_bundle` checks everything a run needs before any session is created: the manifest's
version, that each graph file exists and matches its recorded sha256, and that the domain pack fits
the bundle's layout. Domain vectors are in the bundle's layout (only the stages the graph takes).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import numpy as np

from gandapt.errors import GandaptError

PathLike = Union[str, os.PathLike]


@dataclass
class Bundle:
    """An opened bundle.

    Attributes:
        path: the bundle folder.
        manifest: its :class:`~gandapt.export.manifest.Manifest`.
        layout: the :class:`~gandapt.layout.DomainLayout` of the synthesis graph's ``domain`` input.
        vectors: ``{domain name: float32 [D]}`` in manifest order (empty when the graph has no domain).
    """

    path: Path
    manifest: "object"
    layout: "object"
    vectors: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def domain_names(self) -> List[str]:
        return list(self.vectors)

    @property
    def domain_size(self) -> int:
        """D, the width of the synthesis graph's ``domain`` input (0: the graph has none)."""
        return int(self.layout.size)

    def has_graph(self, name: str) -> bool:
        return name in self.manifest.graphs

    def graph_file(self, name: str) -> Path:
        """Path of ``name``'s ONNX file (``mapping``, ``synthesis``, ``encoder``)."""
        if not self.has_graph(name):
            raise GandaptError(f"bundle {self.path} has no {name} graph (it has {', '.join(self.manifest.graphs)}); "
                               "re-export it" + (" with --encoder" if name == "encoder" else ""))
        return self.path / self.manifest.graphs[name]["file"]

    def engine_file(self, name: str) -> Optional[Path]:
        """Path of a TensorRT engine for ``name`` recorded in the manifest, or None."""
        entry = (self.manifest.engine or {}).get(name)
        return self.path / entry["file"] if isinstance(entry, dict) and entry.get("file") else None

    def identity(self) -> np.ndarray:
        """The identity domain [D] (the base model)."""
        return self.layout.identity()

    def vector(self, name: str) -> np.ndarray:
        """Domain ``name`` as [D] float32; ``base`` (when not a domain name) is the identity.

        Raises:
            GandaptError: unknown name (lists the available ones).
        """
        if name in self.vectors:
            return self.vectors[name]
        if name == "base":
            return self.identity()
        raise GandaptError(f"unknown domain {name!r}; this bundle has: {', '.join(self.domain_names + ['base'])}")

    def blend(self, weights: Mapping[str, float]) -> np.ndarray:
        """Weighted sum of domain vectors taken as offsets from identity: I + Σ w_i (v_i − I).

        Exact for the additive stages (StyleSpace shifts, W+ shifts) and a first-order blend for the
        multiplicative ones, as in the papers' domain mixing (reference/methods.md §3.2).
        """
        if not weights:
            raise GandaptError("empty blend; give name:weight pairs, e.g. --blend sketch:0.7,ink:0.3")
        ident = self.identity()
        out = ident.copy()
        for name, w in weights.items():
            out += float(w) * (self.vector(name) - ident)
        return out.astype(np.float32)


def parse_blend(text: str) -> Dict[str, float]:
    """``"a:0.7,b:0.3"`` → ``{"a": 0.7, "b": 0.3}``; one-line errors on bad syntax."""
    out: Dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, weight = part.rpartition(":")
        if not sep or not name:
            raise GandaptError(f"bad blend item {part!r}; write name:weight, e.g. --blend sketch:0.7,ink:0.3")
        try:
            out[name] = float(weight)
        except ValueError:
            raise GandaptError(f"bad blend weight {weight!r} in {part!r}; use a number") from None
        if not math.isfinite(out[name]):
            raise GandaptError(f"bad blend weight {weight!r} in {part!r}; use a finite number")
    if not out:
        raise GandaptError("empty --blend; write name:weight pairs, e.g. --blend sketch:0.7,ink:0.3")
    return out


def open_bundle(path: PathLike, verify: bool = True) -> Bundle:
    """Open and check a bundle folder.

    Args:
        path: the folder ``gandapt-export`` wrote.
        verify: check each graph's sha256 against the manifest.

    Raises:
        GandaptError: a missing folder/manifest/graph, another bundle version, a corrupted graph, or a
            pack that does not fit the bundle.
    """
    from gandapt.config import GeneratorConfig
    from gandapt.export.manifest import MANIFEST, Manifest
    from gandapt.layout import DomainLayout
    from gandapt.pack import load_pack

    root = Path(path)
    if not root.is_dir():
        raise GandaptError(f"bundle {root} is not a folder; give the folder gandapt-export wrote")
    if not (root / MANIFEST).is_file():
        raise GandaptError(f"{root} has no {MANIFEST}; it is not a gandapt bundle (export one with gandapt-export)")
    manifest = Manifest.read(root, verify=verify)  # version, files present, graph sha256s
    config = GeneratorConfig.from_dict(manifest.config)
    layout = DomainLayout.from_dict(config, manifest.layout)
    vectors: Dict[str, np.ndarray] = {}
    if manifest.domains and layout.size:
        if not manifest.domain_pack or not (root / manifest.domain_pack).is_file():
            raise GandaptError(f"bundle {root} lists domains but lacks {manifest.domain_pack}; re-export the bundle")
        pack = load_pack(root / manifest.domain_pack)
        for name in manifest.domain_names:
            vectors[name] = np.ascontiguousarray(pack.vector(name, layout), dtype=np.float32)
    return Bundle(root, manifest, layout, vectors)
