"""Ahead-of-time compilation of the Triton kernel: what ``@trt.plugin.aot_impl`` hands TensorRT.

``triton.compile`` lowers the kernel for a GPU target without a GPU (TTIR → TTGIR → LLVM IR → PTX →
cubin with the ptxas bundled in the triton wheel). TensorRT's ahead-of-time plugins take the PTX and
the kernel name; attributes are not serialized with them, so each attribute set is its own variant
with the attributes baked in as constexprs (:func:`kernel.kernel_constexprs`).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from gandapt.errors import GandaptError
from gandapt.plugins_trt.modulated_conv.spec import DTYPES, Attributes

NO_TRITON = "triton is not installed: pip install 'gandapt[kernels]'"
TRITON_TYPES = {"float32": "fp32", "float16": "fp16"}
DEFAULT_TARGET = ("cuda", 90, 32)  # H100/H200 (sm_90), warp size 32


@dataclass(frozen=True)
class CompiledVariant:
    """One compiled kernel variant.

    Attributes:
        name: the kernel's symbol in the PTX (what the AOT plugin names).
        ptx: the PTX text.
        cubin: the cubin (None when the backend stopped before it).
        shared: static shared memory per block, bytes.
        num_warps: warps per block (block_x = 32 · num_warps).
        stages: the artifacts produced, e.g. ('ttir', 'ttgir', 'llir', 'ptx', 'cubin').
        target: (backend, arch, warp size).
    """

    name: str
    ptx: str
    cubin: Optional[bytes]
    shared: int
    num_warps: int
    stages: Tuple[str, ...]
    target: Tuple[str, int, int] = field(default=DEFAULT_TARGET)


def signature(dtype: str) -> Dict[str, str]:
    """Triton signature of :func:`kernel.modconv_kernel` for ``dtype`` ('float32' / 'float16'), constexprs included."""
    from gandapt.plugins_trt.modulated_conv.kernel import INT_ARGS, POINTER_INPUTS, modconv_kernel

    if dtype not in DTYPES:
        raise GandaptError(f"the modulated-conv kernel supports {', '.join(DTYPES)}, not {dtype!r}")
    ptr = f"*{TRITON_TYPES[dtype]}"
    sig = {name: ptr for name in POINTER_INPUTS}
    sig.update({name: "i32" for name in INT_ARGS})
    sig["y_ptr"] = ptr
    for name in modconv_kernel.arg_names[len(sig):]:
        sig[name] = "constexpr"
    return sig


def compile_variant(attrs: Attributes, dtype: str = "float32",
                    target: Optional[Tuple[str, int, int]] = DEFAULT_TARGET) -> CompiledVariant:
    """Compile one kernel variant for ``target`` (None = the current GPU, as at a TensorRT build).

    Raises:
        GandaptError: triton missing, or an unsupported dtype.
    """
    try:
        import triton
        from triton.backends.compiler import GPUTarget
    except ImportError:
        raise GandaptError(NO_TRITON) from None
    from gandapt.plugins_trt.modulated_conv.kernel import NUM_STAGES, NUM_WARPS, kernel_constexprs, modconv_kernel

    if not isinstance(modconv_kernel, triton.runtime.jit.JITFunction):
        raise GandaptError("the kernel module was imported with TRITON_INTERPRET=1 (interpreter mode); compile ahead "
                           "of time in a process without it")
    src = triton.compiler.ASTSource(fn=modconv_kernel, signature=signature(dtype),
                                    constexprs=kernel_constexprs(attrs, dtype))
    gpu = GPUTarget(*target) if target is not None else None
    compiled = triton.compile(src, target=gpu, options={"num_warps": NUM_WARPS, "num_stages": NUM_STAGES})
    asm = compiled.asm
    return CompiledVariant(name=compiled.metadata.name, ptx=asm["ptx"], cubin=asm.get("cubin"),
                           shared=int(compiled.metadata.shared), num_warps=int(compiled.metadata.num_warps),
                           stages=tuple(asm), target=tuple(target) if target else ("current", 0, 32))


def variants() -> List[Tuple[Attributes, str]]:
    """Every variant the exporter emits: up × rank-1 × dtype, for a demodulated lrelu·√2 synthesis conv
    (``clamp`` and ``gain`` only change constants, not the code; the kernel also supports
    ``demodulate=0`` and ``activation='linear'``, covered by the interpreter tests)."""
    return [(Attributes(up=up, rank1=rank1, clamp=256.0), dtype)
            for up in (0, 1) for rank1 in (0, 1) for dtype in DTYPES]


def write_variants(out: Path, every: bool = True, target: Tuple[str, int, int] = DEFAULT_TARGET) -> Dict[str, Any]:
    """Compile :func:`variants` (or only the first when ``every`` is False) and write each one's PTX and
    cubin plus ``variants.json`` (name, attributes, dtype, shared memory, sizes, params) under ``out``.

    Returns:
        The ``variants.json`` content.
    """
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for attrs, dtype in variants()[: None if every else 1]:
        t0 = time.perf_counter()
        v = compile_variant(attrs, dtype, target)
        stem = f"modconv_up{attrs.up}_rank1{attrs.rank1}_{dtype}_sm{target[1]}"
        (out / f"{stem}.ptx").write_text(v.ptx)
        if v.cubin is not None:
            (out / f"{stem}.cubin").write_bytes(v.cubin)
        entry = re.search(r"\.entry\s+(\w+)\(([^)]*)\)", v.ptx, re.S)
        rows.append({"file": stem, "kernel": v.name, "attributes": asdict(attrs), "dtype": dtype,
                     "stages": list(v.stages), "ptx_bytes": len(v.ptx), "cubin_bytes": len(v.cubin or b""),
                     "ptx_target": re.search(r"^\.target\s+(\S+)", v.ptx, re.M).group(1),
                     "ptx_params": len(entry.group(2).split(",")) if entry else None,
                     "shared_bytes": v.shared, "num_warps": v.num_warps,
                     "compile_s": round(time.perf_counter() - t0, 2)})
    summary = {"target": list(target), "variants": rows}
    (out / "variants.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def launch_grid(n: int, o: int, h: int, w: int) -> Tuple[int, int]:
    """Grid of the kernel for x [n, ·, h, w] and o output channels: (n · cdiv(h·w, BLOCK_P), cdiv(o, BLOCK_O))."""
    from gandapt.plugins_trt.modulated_conv.kernel import BLOCK_O, BLOCK_P

    return n * -(-h * w // BLOCK_P), -(-o // BLOCK_O)


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m gandapt.plugins_trt.modulated_conv.aot OUT [--first-only] [--arch 90]``."""
    p = argparse.ArgumentParser(description="Compile the gandapt::ModulatedConv2d kernel variants ahead of time.")
    p.add_argument("out", type=Path)
    p.add_argument("--first-only", action="store_true", help="only the first variant (a quick check)")
    p.add_argument("--arch", type=int, default=DEFAULT_TARGET[1], help="CUDA compute capability, e.g. 90")
    a = p.parse_args(argv)
    summary = write_variants(a.out, every=not a.first_only, target=("cuda", a.arch, 32))
    for row in summary["variants"]:
        print(f"{row['file']}: {row['kernel']} {row['ptx_target']} ptx {row['ptx_bytes']} B cubin "
              f"{row['cubin_bytes']} B shared {row['shared_bytes']} B ({row['compile_s']} s)")


if __name__ == "__main__":
    main()
