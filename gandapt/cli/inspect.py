"""``gandapt-inspect``: describe a checkpoint or a domain pack.

:func:`inspect_path` does the work and returns a JSON-ready dict; the click command prints it as an
aligned text report or, with ``--json``, as JSON only. Inspecting a pack needs no torch; a
checkpoint is loaded through :func:`gandapt.checkpoint.load` (every supported format).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import click

from gandapt.cli.errors import one_line, user_errors
from gandapt.errors import GandaptError

PathLike = Union[str, os.PathLike]


def inspect_path(path: PathLike, model: Optional[PathLike] = None) -> Dict[str, Any]:
    """Describe a checkpoint or a domain pack.

    Args:
        path: a checkpoint in any supported format, or a domain pack (``.safetensors``).
        model: with a pack only: a checkpoint to check the pack against.

    Returns:
        For a checkpoint (``kind == "checkpoint"``): format, architecture, parameter counts,
        fingerprint, ``stylespace_dim``, ``conv_in_dim`` and the domain-layout size per stage. For a
        pack (``kind == "pack"``): its base model, stages and domains, plus ``compatibility``
        (``{"model", "compatible", "message"}``) when ``model`` is given.

    Raises:
        GandaptError: the path is missing, empty, a directory, or not a readable checkpoint or pack.
    """
    path = _check_file(path, "checkpoint or domain pack")
    from gandapt.pack import is_pack_file  # numpy only

    if is_pack_file(path) or Path(path).suffix.lower() == ".safetensors":
        return _inspect_pack(path, model)  # a damaged pack: load_pack says what is wrong with it
    if model is not None:
        raise GandaptError(f"--model applies to a domain pack, but {path} is a checkpoint; "
                           "inspect the pack and pass the checkpoint as --model")
    return _inspect_checkpoint(path)


def _check_file(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise GandaptError(f"{path} does not exist; give the path of a {what}")
    if path.is_dir():
        raise GandaptError(f"{path} is a directory; give the path of a {what} file")
    if path.stat().st_size == 0:
        raise GandaptError(f"{path} is empty (0 bytes); the copy or download was probably cut short, "
                           "fetch the file again")
    return path


def _count(module: Any) -> Optional[int]:
    if module is None:
        return None
    return sum(p.numel() for p in module.parameters())


def _load_checkpoint(path: PathLike) -> Any:
    from gandapt.checkpoint import load  # torch is imported here, not for packs

    return load(_check_file(path, "checkpoint"))


def _inspect_checkpoint(path: Path) -> Dict[str, Any]:
    from gandapt.layout import DomainLayout

    ckpt = _load_checkpoint(path)
    cfg = ckpt.config
    layout = DomainLayout(cfg)
    return {
        "kind": "checkpoint",
        "path": str(path),
        "format": ckpt.format,
        "variant": cfg.variant,
        "img_resolution": cfg.img_resolution,
        "z_dim": cfg.z_dim,
        "w_dim": cfg.w_dim,
        "num_ws": cfg.num_ws,
        "mapping_layers": cfg.mapping_layers,
        "conv_clamp": cfg.conv_clamp,
        "channels": {str(res): ch for res, ch in cfg.channel_dict.items()},
        "params": {
            "G_mapping": _count(ckpt.G.mapping),
            "G_synthesis": _count(ckpt.G.synthesis),
            "G_total": _count(ckpt.G),
            "D_total": _count(getattr(ckpt, "D", None)),
        },
        "fingerprint": ckpt.fingerprint,
        "stylespace_dim": cfg.stylespace_dim,
        "conv_in_dim": cfg.conv_in_dim,
        "domain_layout": {"stages": dict(layout.stage_sizes), "size": layout.size},
    }


def _inspect_pack(path: Path, model: Optional[PathLike]) -> Dict[str, Any]:
    from gandapt.pack import check_compatible, load_pack

    pack = load_pack(path)
    cfg = pack.base_config
    report: Dict[str, Any] = {
        "kind": "pack",
        "path": str(path),
        "base_fingerprint": pack.base_fingerprint,
        "base_config": cfg.to_dict(),
        "layout_version": pack.layout_version,
        "stages": list(pack.stages),
        "domains": [
            {
                "name": name,
                "method": pack.domains[name].meta.get("method"),
                "stages": list(pack.domains[name].stages),
                "floats": int(sum(t.size for t in pack.domains[name].tensors.values())),
            }
            for name in pack.names
        ],
    }
    if model is not None:
        ckpt = _load_checkpoint(model)
        try:
            check_compatible(pack, ckpt.config, ckpt.fingerprint)
            verdict = {"compatible": True, "message": None}
        except GandaptError as err:
            verdict = {"compatible": False, "message": one_line(str(err))}
        report["compatibility"] = {"model": str(model), **verdict}
    return report


# ---- text rendering ---------------------------------------------------------------------------

def _num(value: Optional[int]) -> str:
    return "-" if value is None else f"{value:,}"


def _table(rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> List[str]:
    """Rows as aligned columns (two spaces apart); columns in ``right`` are right-aligned."""
    right = set(right)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def _section(title: str, rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> List[str]:
    return ["", title] + ["  " + line for line in _table(rows, right)]


def format_report(report: Dict[str, Any]) -> str:
    """The human-readable form of an :func:`inspect_path` result."""
    if report["kind"] == "pack":
        return _format_pack(report)
    res, clamp = report["img_resolution"], report["conv_clamp"]
    lines = [f"checkpoint  {report['path']}"]
    lines += _section("model", [
        ("format", str(report["format"])),
        ("variant", report["variant"]),
        ("resolution", f"{res}x{res}"),
        ("z_dim / w_dim", f"{report['z_dim']} / {report['w_dim']}"),
        ("num_ws", str(report["num_ws"])),
        ("mapping layers", str(report["mapping_layers"])),
        ("conv_clamp", "none" if clamp is None else f"{clamp:g}"),
        ("stylespace_dim", str(report["stylespace_dim"])),
        ("conv_in_dim", str(report["conv_in_dim"])),
        ("fingerprint", str(report["fingerprint"])),
    ])
    channels = report["channels"]
    lines += _section("channels", [("resolution", *channels), ("channels", *map(str, channels.values()))],
                      right=range(1, len(channels) + 1))
    p = report["params"]
    lines += _section("parameters", [
        ("G mapping", _num(p["G_mapping"])),
        ("G synthesis", _num(p["G_synthesis"])),
        ("G total", _num(p["G_total"])),
        ("D total", _num(p["D_total"]) if p["D_total"] is not None else "none in file"),
    ], right=[1])
    layout = report["domain_layout"]
    stages = [(stage, _num(n)) for stage, n in layout["stages"].items()]
    lines += _section("domain layout (floats per stage)", stages + [("total", _num(layout["size"]))], right=[1])
    return "\n".join(lines)


def _format_pack(report: Dict[str, Any]) -> str:
    cfg = report["base_config"]
    res = cfg["img_resolution"]
    lines = [f"domain pack  {report['path']}"]
    lines += _section("pack", [
        ("base model", report["base_fingerprint"] or "unknown (no fingerprint recorded)"),
        ("base config", f"{res}x{res} {cfg['variant']}, z_dim {cfg['z_dim']}, w_dim {cfg['w_dim']}"),
        ("layout version", str(report["layout_version"])),
        ("stages", ", ".join(report["stages"]) or "none"),
        ("domains", str(len(report["domains"]))),
    ])
    if report["domains"]:
        rows: List[Tuple[str, ...]] = [("name", "method", "stages", "floats")]
        for d in report["domains"]:
            rows.append((d["name"], d["method"] or "-", ",".join(d["stages"]) or "identity", _num(d["floats"])))
        lines += _section("domains", rows, right=[3])
    if "compatibility" in report:
        c = report["compatibility"]
        verdict = "OK" if c["compatible"] else f"refused: {c['message']}"
        lines += ["", f"with model {c['model']}: {verdict}"]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--model", type=click.Path(path_type=Path), metavar="CKPT",
              help="With a domain pack: check that the pack fits this checkpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only (machine-readable).")
@user_errors()
def main(path: Path, model: Optional[Path], as_json: bool) -> None:
    """Describe a checkpoint or a domain pack at PATH.

    Checkpoints: rosinality .pt, NVlabs .pkl or state dicts, gandapt native .pt. Shows the
    architecture, parameter counts, fingerprint and domain-layout size. Packs: shows their domains
    and base model; with --model, whether the pack fits that checkpoint (exit 1 if not).
    """
    report = inspect_path(path, model)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
    if not report.get("compatibility", {}).get("compatible", True):
        click.get_current_context().exit(1)


if __name__ == "__main__":
    main()
