"""Domain packs: named domains for one base generator in one safetensors file (numpy only, no torch).

Each domain stores only its non-identity tensors, under keys ``"{domain}/{entry}"`` (float32). The
safetensors metadata (str -> str) carries:

- ``gandapt_format``: ``'gandapt.domain-pack'``; ``format_version``: ``'1'``;
- ``layout_version``: :data:`gandapt.layout.LAYOUT_VERSION` the entry names refer to;
- ``base_fingerprint``: :func:`gandapt.fingerprint.fingerprint` of the base generator, or ``''``;
- ``base_config``: ``GeneratorConfig.to_dict()`` as JSON;
- ``domains``: JSON ``{name: per-domain meta}`` in pack order (a domain with no tensors is the identity);
- ``meta``: JSON pack-level meta. A pack whose domains only work on a model derived from another one
  (Domain Expansion's expanded base) says so under :data:`REQUIRES_BASE`:
  ``{'kind': 'expanded', 'fingerprint': <that model>, 'parent_fingerprint': <the model it came from>, ...}``.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union

import numpy as np

from gandapt.config import GeneratorConfig
from gandapt.errors import DomainError, GandaptError
from gandapt.io import atomic_path, check_writable
from gandapt.layout import LAYOUT_VERSION, STAGES, DomainLayout, full_layout, stage_of

PACK_FORMAT = "gandapt.domain-pack"
PACK_FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own header limit
REQUIRES_BASE = "requires_base"  # pack meta key: the (derived) base model the domains need

PathLike = Union[str, os.PathLike]


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or "/" in name:
        raise DomainError(f"invalid domain name {name!r}; use a non-empty name without '/'")
    return name


@dataclass(eq=False)
class Domain:
    """One domain: its non-identity tensors and free-form meta (method, recipe, ...).

    Attributes:
        name: non-empty, no ``'/'``.
        tensors: ``{entry name: float32 array of the entry's shape}``; absent entries are identity.
        meta: JSON-serialisable dict.
    """

    name: str
    tensors: Dict[str, np.ndarray] = field(default_factory=dict)
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name)
        for key in self.tensors:
            stage_of(key)  # raises DomainError for a malformed entry name
        self.tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.tensors.items()}
        self.meta = dict(self.meta)

    @property
    def stages(self) -> Tuple[str, ...]:
        """Stages this domain's tensors touch, canonical order."""
        used = {stage_of(k) for k in self.tensors}
        return tuple(s for s in STAGES if s in used)

    @classmethod
    def from_vector(cls, name: str, layout: DomainLayout, vec: Any,
                    meta: Optional[Mapping[str, Any]] = None) -> "Domain":
        """A domain holding the non-identity entries of ``vec`` ``[D]`` (in ``layout``)."""
        return cls(name, layout.from_vector(vec, only_changed=True), dict(meta or {}))


class DomainPack:
    """Named domains for one base generator.

    Args:
        domains: ``{name: Domain}`` (order kept) or an iterable of domains.
        base_config: the base generator's config.
        base_fingerprint: the base generator's fingerprint, None when unknown.
        meta: pack-level JSON-serialisable meta.
        layout_version: layout version the entry names refer to.
        source: where the pack was loaded from (used in messages).

    Raises:
        DomainError: a tensor this generator does not have, or of the wrong shape.
    """

    def __init__(self, domains: Union[Mapping[str, Domain], Iterable[Domain]], base_config: GeneratorConfig,
                 base_fingerprint: Optional[str] = None, meta: Optional[Mapping[str, Any]] = None,
                 layout_version: int = LAYOUT_VERSION, source: Optional[str] = None):
        self.base_config = base_config
        self.base_fingerprint = base_fingerprint or None
        self.meta = dict(meta or {})
        self.layout_version = int(layout_version)
        self.source = source
        self.domains: Dict[str, Domain] = {}
        items = domains.items() if isinstance(domains, Mapping) else ((d.name, d) for d in domains)
        for key, dom in items:
            if key != dom.name:
                raise DomainError(f"domain stored under {key!r} is named {dom.name!r}; use the same name for both")
            self.add(dom)

    # ---- access -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"DomainPack({list(self.names)}, stages={self.stages}, fingerprint={self.base_fingerprint})"

    def __len__(self) -> int:
        return len(self.domains)

    def __contains__(self, name: str) -> bool:
        return name in self.domains

    def __getitem__(self, name: str) -> Domain:
        if name not in self.domains:
            raise DomainError(f"no domain {name!r} in {self._label()}; available: "
                              f"{', '.join(self.names) or '(none)'}")
        return self.domains[name]

    @property
    def names(self) -> Tuple[str, ...]:
        """Domain names in pack order."""
        return tuple(self.domains)

    @property
    def stages(self) -> Tuple[str, ...]:
        """Union of the stages the domains use, canonical order."""
        used = {s for d in self.domains.values() for s in d.stages}
        return tuple(s for s in STAGES if s in used)

    def add(self, domain: Domain, replace: bool = False) -> None:
        """Add ``domain`` after checking its tensors against the base config.

        Raises:
            DomainError: the name exists (and not ``replace``), or a tensor does not fit the generator.
        """
        if domain.name in self.domains and not replace:
            raise DomainError(f"{self._label()} already has a domain {domain.name!r}; "
                              "pick another name or pass replace=True")
        _check_shapes(domain, full_layout(self.base_config), self._label())
        self.domains[domain.name] = domain

    # ---- vectors ------------------------------------------------------------------------------
    def layout(self, stages: Optional[Union[str, Iterable[str]]] = None) -> DomainLayout:
        """The layout of the base config holding ``stages`` (default: the stages the domains use)."""
        return DomainLayout(self.base_config, self.stages if stages is None else stages)

    def vector(self, name: str, layout: Optional[DomainLayout] = None) -> np.ndarray:
        """Domain ``name`` as a flat vector.

        Returns:
            float32 ``[D]`` of ``layout`` (default :meth:`layout`).

        Raises:
            DomainError: unknown name (lists the available ones), or the layout lacks a stage it uses.
        """
        dom = self[name]
        layout = self._check_layout(layout)
        missing = [s for s in dom.stages if s not in layout.stages]
        if missing:
            raise DomainError(
                f"domain {name!r} uses stage(s) {', '.join(missing)} but the layout has only "
                f"{', '.join(layout.stages) or '(none)'}; export with stages including {', '.join(missing)}"
            )
        return layout.to_vector(dom.tensors)

    def vectors(self, names: Optional[Iterable[str]] = None,
                layout: Optional[DomainLayout] = None) -> np.ndarray:
        """Several domains stacked: float32 ``[N, D]`` (default: every domain, pack order)."""
        layout = self._check_layout(layout)
        names = self.names if names is None else list(names)
        out = layout.identity(len(names))
        for i, name in enumerate(names):
            out[i] = self.vector(name, layout)
        return out

    def blend(self, weights: Mapping[str, float], layout: Optional[DomainLayout] = None) -> np.ndarray:
        """Linear blend in the stored tensors: ``identity + Σ w_i (t_i − identity)``.

        Exact for methods whose tensors act linearly (StyleSpace shifts); for hypernetwork methods blend
        their conditioning and recompute instead (methods.md §11.5).

        Args:
            weights: ``{domain name: weight}``; weights need not sum to 1.
            layout: target layout (default :meth:`layout`).

        Returns:
            float32 ``[D]``.
        """
        layout = self._check_layout(layout)
        ident = layout.identity()
        acc = np.zeros(layout.size, np.float64)  # accumulate in float64 so many-way blends stay exact
        for name, w in weights.items():
            acc += float(w) * (self.vector(name, layout).astype(np.float64) - ident)
        return (ident + acc).astype(np.float32)

    # ---- helpers ------------------------------------------------------------------------------
    def _label(self) -> str:
        return f"domain pack {self.source}" if self.source else "this domain pack"

    def _check_layout(self, layout: Optional[DomainLayout]) -> DomainLayout:
        if layout is None:
            return self.layout()
        if layout.config != self.base_config:
            raise DomainError(f"{self._label()} was made for another generator config than the layout's; "
                              "use a pack trained for this model")
        return layout


def _check_shapes(domain: Domain, full: DomainLayout, label: str) -> None:
    """Every tensor of ``domain`` is an entry of ``full`` with its shape and finite values."""
    for key, arr in domain.tensors.items():
        try:
            e = full.entry(key)
        except DomainError as err:
            raise DomainError(f"{label}, domain {domain.name!r}: {err}") from None
        if arr.shape != e.shape:
            raise DomainError(
                f"{label}, domain {domain.name!r}: tensor {key!r} has shape {list(arr.shape)} but this generator "
                f"needs {list(e.shape)}; use a pack trained for this model"
            )
        if not np.all(np.isfinite(arr)):
            raise DomainError(f"{label}, domain {domain.name!r}: tensor {key!r} contains NaN or inf; "
                              "retrain or re-export that domain")


# ---- files ----------------------------------------------------------------------------------------
def _read_header(path: Path) -> Dict[str, Any]:
    """Parse a safetensors JSON header; raise ValueError with the reason when it is not one."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("file shorter than a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > min(_MAX_HEADER, size - 8):
            raise ValueError("bad or truncated safetensors header")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header


def is_pack_file(path: PathLike) -> bool:
    """Cheap sniff: is ``path`` a safetensors file whose metadata names the domain-pack format?

    Reads only the header; never raises.
    """
    try:
        meta = _read_header(Path(path)).get("__metadata__") or {}
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("gandapt_format") == PACK_FORMAT


def save_pack(pack: DomainPack, path: PathLike, force: bool = False) -> Path:
    """Write ``pack`` to ``path`` atomically (float32 tensors, identity entries dropped).

    Raises:
        GandaptError: ``path`` exists and not ``force``; meta that is not JSON-serialisable.
    """
    check_writable(path, force)  # fail before building anything
    data = pack_bytes(pack)
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def pack_bytes(pack: DomainPack) -> bytes:
    """The pack file's bytes (what :func:`save_pack` writes; a ``model.pt`` embeds them)."""
    from safetensors.numpy import save  # imported here: only writers and readers of packs need it

    tensors, domains_meta = {}, {}
    full = full_layout(pack.base_config)
    for name, dom in pack.domains.items():
        _check_shapes(dom, full, pack._label())  # tensors may have been edited since they were added
        for key, arr in dom.tensors.items():
            if np.all(arr == full.entry(key).identity):
                continue  # identity entries carry no information
            tensors[f"{name}/{key}"] = np.ascontiguousarray(arr, dtype=np.float32)
        domains_meta[name] = dom.meta
    metadata = {
        "gandapt_format": PACK_FORMAT,
        "format_version": str(PACK_FORMAT_VERSION),
        "layout_version": str(pack.layout_version),
        "base_fingerprint": pack.base_fingerprint or "",
        "base_config": json.dumps(pack.base_config.to_dict()),
        "domains": _json(domains_meta, "domain meta"),
        "meta": _json(pack.meta, "pack meta"),
    }
    return save(tensors, metadata=metadata)


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as e:
        raise GandaptError(f"{what} is not JSON-serialisable ({e}); "
                           "store only str/number/bool/list/dict values") from None


def load_pack(path: PathLike) -> DomainPack:
    """Read a domain pack written by :func:`save_pack`.

    Raises:
        GandaptError: missing file, not a safetensors file or truncated, not a domain pack, a newer format.
        DomainError: a layout version this gandapt cannot read, or tensors that do not fit the base config.
    """
    from safetensors.numpy import load

    path = Path(path)
    if not path.is_file():
        raise GandaptError(f"domain pack {path} not found; check the path")
    try:
        header = _read_header(path)
    except ValueError as e:
        raise GandaptError(f"{path} is not a gandapt domain pack ({e}); "
                           "give a .safetensors pack written by gandapt") from None
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("gandapt_format") != PACK_FORMAT:
        found = meta.get("gandapt_format") if isinstance(meta, dict) else None
        raise GandaptError(f"{path} is not a gandapt domain pack (format {found or 'missing'}, "
                           f"expected {PACK_FORMAT}); give a pack written by gandapt")
    version = _int_field(meta, "format_version", path)
    if version > PACK_FORMAT_VERSION:
        raise GandaptError(f"domain pack {path} has format version {version} but this gandapt reads up to "
                           f"{PACK_FORMAT_VERSION}; upgrade gandapt")
    layout_version = _int_field(meta, "layout_version", path)
    if layout_version != LAYOUT_VERSION:
        raise DomainError(f"domain pack {path} uses domain layout version {layout_version} but this gandapt uses "
                          f"{LAYOUT_VERSION}; use a pack written by this gandapt version")
    try:
        config = GeneratorConfig.from_dict(json.loads(meta["base_config"]))
        domains_meta = json.loads(meta["domains"])
        pack_meta = json.loads(meta.get("meta", "{}"))
        if not isinstance(domains_meta, dict):
            raise ValueError("domains is not a JSON object")
    except (KeyError, ValueError, TypeError) as e:
        raise GandaptError(f"{path} is not a valid gandapt domain pack (bad metadata: {_first_line(e)}); "
                           "re-export it") from None
    try:
        raw = load(path.read_bytes())
    except Exception as e:  # safetensors raises its own SafetensorError for corrupt/truncated data
        raise GandaptError(f"{path} is not a gandapt domain pack (corrupt or truncated: {_first_line(e)}); "
                           "re-export it") from None

    per_domain: Dict[str, Dict[str, np.ndarray]] = {name: {} for name in domains_meta}
    for key, arr in raw.items():
        name, _, entry = key.partition("/")
        if name not in per_domain or not entry:
            raise GandaptError(f"{path} holds tensor {key!r} of no listed domain; re-export the pack")
        if arr.dtype.kind != "f":
            raise GandaptError(f"{path}: tensor {key!r} has dtype {arr.dtype}, not float; re-export the pack")
        per_domain[name][entry] = np.array(arr, dtype=np.float32)  # copy: writable, detached from the buffer
    label = f"domain pack {path}"
    domains = []
    for name, dmeta in domains_meta.items():
        if not isinstance(dmeta, dict):
            raise GandaptError(f"{path} is not a valid gandapt domain pack (meta of domain {name!r} is not a "
                               "JSON object); re-export it")
        try:
            domains.append(Domain(name, per_domain[name], dmeta))
        except DomainError as e:
            raise DomainError(f"{label}: {e}") from None
    return DomainPack(domains, config, meta.get("base_fingerprint") or None, pack_meta,
                      layout_version, source=str(path))


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _int_field(meta: Mapping[str, str], key: str, path: Path) -> int:
    try:
        return int(meta[key])
    except (KeyError, ValueError):
        raise GandaptError(f"{path} is not a valid gandapt domain pack (metadata {key!r} missing or not an "
                           "integer); re-export it") from None


def check_compatible(pack: DomainPack, config: GeneratorConfig, fingerprint: Optional[str]) -> None:
    """Refuse a pack made for another base model, config or layout version.

    Fingerprints are compared when both are known; the config and tensor shapes always.

    Args:
        pack: the domain pack.
        config: the loaded generator's config.
        fingerprint: the loaded generator's fingerprint (None when unknown).

    Raises:
        DomainError: one line naming the mismatch.
    """
    label = pack._label()
    if pack.layout_version != LAYOUT_VERSION:
        raise DomainError(f"{label} uses domain layout version {pack.layout_version} but this gandapt uses "
                          f"{LAYOUT_VERSION}; use a pack written by this gandapt version")
    needs = pack.meta.get(REQUIRES_BASE)
    if isinstance(needs, dict) and needs.get("fingerprint") and needs.get("fingerprint") != fingerprint:
        parent = needs.get("parent_fingerprint")
        why = (f"this model {fingerprint} is the original it was expanded from" if fingerprint and fingerprint == parent
               else f"this model is {fingerprint or 'of unknown fingerprint'}")
        raise DomainError(f"{label} holds {needs.get('kind', 'derived')}-base domains ({needs.get('method', '?')}) that "
                          f"only work on the {needs.get('kind', 'derived')} base model {needs['fingerprint']}, but {why}; "
                          f"load that model ({needs.get('model') or 'the model.pt of the same run'}) instead")
    if pack.base_fingerprint and fingerprint and pack.base_fingerprint != fingerprint:
        raise DomainError(f"{label} was made for base model {pack.base_fingerprint} but this model is "
                          f"{fingerprint}; use a pack trained for this model")
    if pack.base_config != config:
        mine, theirs = pack.base_config.to_dict(), config.to_dict()
        diff = "; ".join(f"{k} {mine[k]} vs {theirs.get(k)}" for k in mine if mine[k] != theirs.get(k))
        raise DomainError(f"{label} was made for a generator with another config (pack vs model: {diff}); "
                          "use a pack trained for this model")
    full = full_layout(config)
    for dom in pack.domains.values():
        _check_shapes(dom, full, label)
