"""``gandapt-export``: a thin click layer over :func:`gandapt.export.bundle.export_bundle`.

Heavy modules (torch, the exporter, TensorRT) load inside the command, so ``--help`` is fast.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Optional

import click

from gandapt.cli.errors import user_errors
from gandapt.errors import GandaptError
from gandapt.export.spec import DEFAULT_OPSET, FORMS, PRECISIONS


def _optional(module: str, function: str):
    """``gandapt.export.<module>.<function>``, or a one-line error when that part is not installed."""
    try:
        mod = importlib.import_module(f"gandapt.export.{module}")
    except ImportError:
        mod = None
    fn = getattr(mod, function, None)
    if fn is None:
        raise GandaptError(f"{function} is not available in this gandapt (gandapt.export.{module} is missing); "
                           "export without that option")
    return fn


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to create.")
@click.option("--domains", type=click.Path(dir_okay=False, path_type=Path),
              help="Domain pack (.safetensors); default: the pack stored in MODEL, if any.")
@click.option("--only", help="Export only these domains of the pack (comma-separated names).")
@click.option("--encoder", type=click.Path(dir_okay=False, path_type=Path),
              help="Inversion encoder (.pt from gandapt-train encoder) to export as encoder.onnx; "
                   "default: the encoder stored in MODEL, if any.")
@click.option("--modconv", type=click.Choice(FORMS), default="decomposed", show_default=True,
              help="Modulated-conv form: decomposed (dynamic batch), grouped (fixed --batch), plugin "
                   "(one gandapt::ModulatedConv2d TensorRT plugin node per synthesis conv; fp32).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="fp16 writes an explicitly typed float16 graph with float32 inputs and outputs.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True, help="ONNX opset (18 or newer).")
@click.option("--batch", type=click.IntRange(min=1), default=2, show_default=True,
              help="Batch of fixed-batch graphs (--modconv grouped).")
@click.option("--truncation-cutoff", type=click.IntRange(min=1), default=None,
              help="Truncate only the first this-many W+ rows (default: all).")
@click.option("--engine", is_flag=True, help="Also build a TensorRT engine for synthesis (GPU + TensorRT).")
@click.option("--triton-repo", type=click.Path(file_okay=False, path_type=Path),
              help="Also write a Triton Inference Server model repository here.")
@click.option("--force", is_flag=True, help="Replace an existing bundle (and engine / repository).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@user_errors()
def main(model: Path, out: Path, domains: Optional[Path], only: Optional[str], encoder: Optional[Path], modconv: str,
         precision: str, opset: int, batch: int, truncation_cutoff: Optional[int], engine: bool,
         triton_repo: Optional[Path], force: bool, quiet: bool) -> None:
    """Export MODEL (a gandapt model.pt, or any checkpoint with --domains PACK) to a bundle.

    The bundle holds mapping.onnx (z, truncation_psi to ws), synthesis.onnx (ws and domain to image;
    only the domain stages the exported domains use), domains.safetensors and manifest.json, plus
    encoder.onnx (image to ws, for camera input) with --encoder or an encoder stored in MODEL. Every
    graph is re-run in onnxruntime against PyTorch before the bundle is written.
    """
    from gandapt.export.spec import ExportSpec

    t0 = time.perf_counter()
    spec = ExportSpec(modconv=modconv, precision=precision, opset=opset, batch=batch,
                      truncation_cutoff=truncation_cutoff)
    # Resolve the optional parts before the (slow) export so a missing one fails at once.
    build_engine = _optional("engine", "build_engine") if engine else None
    write_repo = _optional("triton_repo", "write_triton_repo") if triton_repo else None
    if triton_repo:
        _optional("triton_repo", "check_repo_dir")(triton_repo, force)
    if engine:  # no TensorRT or GPU: say so now, not after minutes of export
        _optional("engine", "require_tensorrt")()
    from gandapt.export.bundle import export_bundle

    bundle = export_bundle(model, out, domains=domains, only=only, spec=spec, force=force, progress=not quiet,
                           encoder=encoder)
    if build_engine is not None:
        t = time.perf_counter()
        plan = build_engine(bundle, force=force)
        _say(quiet, f"built TensorRT engine {plan} ({time.perf_counter() - t:.1f} s)")
    if write_repo is not None:
        t = time.perf_counter()
        platforms = ("onnxruntime", "tensorrt") if engine else ("onnxruntime",)
        repo = write_repo(bundle, triton_repo, platforms=platforms, force=force)
        _say(quiet, f"wrote Triton model repository {repo} ({time.perf_counter() - t:.1f} s)")
    _say(quiet, f"done in {time.perf_counter() - t0:.1f} s: {bundle}")


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        click.echo(message, err=True)


if __name__ == "__main__":
    main()
