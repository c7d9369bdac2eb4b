"""Ahead-of-time compile of the kernel for sm_90 without a GPU (what the TensorRT aot_impl hands over).

Compiling runs in a subprocess without TRITON_INTERPRET (this suite's conftest turns interpreter mode
on, and an interpreted kernel cannot be compiled).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")


def _ptxas() -> bool:
    import triton.backends.nvidia as nv

    bundled = Path(nv.__file__).parent / "bin" / "ptxas"
    return bundled.is_file() or shutil.which("ptxas") is not None


def compile_variants(out: Path, every: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(out / "cache")  # a fresh cache: the compile really runs
    cmd = [sys.executable, "-m", "gandapt.plugins_trt.modulated_conv.aot", str(out)] + ([] if every else ["--first-only"])
    proc = subprocess.run(["nice", "-n", "19", *cmd], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "variants.json").read_text())


def check(summary: dict, out: Path) -> None:
    for row in summary["variants"]:
        assert row["stages"][-2:] == ["ptx", "cubin"], row
        assert row["ptx_target"].startswith("sm_90") and row["kernel"] == "modconv_kernel"
        ptx = (out / f"{row['file']}.ptx").read_text()
        assert ".visible .entry modconv_kernel(" in ptx
        # 10 inputs + 12 ints + 1 output, then Triton's two scratch pointers (unused: size 0, see README).
        assert row["ptx_params"] == 25
        assert (out / f"{row['file']}.cubin").read_bytes()[:4] == b"\x7fELF"
        assert 0 < row["shared_bytes"] <= 227 * 1024  # fits one sm_90 block's shared memory


@pytest.mark.skipif(not _ptxas(), reason="no ptxas (triton's bundled one or on PATH): cubins cannot be made")
def test_first_variant_compiles_for_sm90(tmp_path: Path) -> None:
    summary = compile_variants(tmp_path, every=False)
    assert summary["target"] == ["cuda", 90, 32] and len(summary["variants"]) == 1
    check(summary, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not _ptxas(), reason="no ptxas (triton's bundled one or on PATH): cubins cannot be made")
def test_every_variant_compiles_for_sm90(tmp_path: Path) -> None:
    from gandapt.plugins_trt.modulated_conv.aot import variants

    summary = compile_variants(tmp_path, every=True)
    assert len(summary["variants"]) == len(variants()) == 8
    assert {(r["attributes"]["up"], r["attributes"]["rank1"], r["dtype"]) for r in summary["variants"]} == \
        {(u, k, d) for u in (0, 1) for k in (0, 1) for d in ("float32", "float16")}
    check(summary, tmp_path)


def test_interpreted_kernel_is_refused() -> None:
    from gandapt.errors import GandaptError
    from gandapt.plugins_trt.modulated_conv.aot import compile_variant
    from gandapt.plugins_trt.modulated_conv.spec import Attributes

    with pytest.raises(GandaptError, match="TRITON_INTERPRET=1"):
        compile_variant(Attributes(), "float32")
    with pytest.raises(GandaptError, match="not 'bfloat16'"):
        from gandapt.plugins_trt.modulated_conv.aot import signature

        signature("bfloat16")
