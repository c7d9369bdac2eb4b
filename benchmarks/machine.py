"""What a result was measured on: CPU/GPU model, thread count, load, library versions, checkout.

Nothing here imports TensorRT or touches a GPU driver: versions come from package metadata, and the
GPU is described only through torch when torch already sees one (importing TensorRT's runtimes on a
machine without a driver can crash the process, reference/env.md).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Optional

PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu", "onnx", "onnxscript", "numpy", "opencv-python",
            "safetensors", "tensorrt", "triton", "cuda-python", "matplotlib")


def cpu_threads() -> int:
    """Cores this process may run on (the default ``--threads``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> Optional[list]:
    """1/5/15-minute load averages: a loaded machine gives contaminated numbers, so every run records it."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def memory_gib() -> Optional[float]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def versions() -> Dict[str, Optional[str]]:
    """Installed versions of the packages that decide the numbers (None: not installed)."""
    import gandapt

    out: Dict[str, Optional[str]] = {"gandapt": gandapt.__version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def gpu_info() -> Optional[Dict[str, Any]]:
    """The CUDA device torch sees (name, capability, memory, CUDA and driver-facing versions), or None."""
    if "torch" not in sys.modules:
        try:
            import torch  # noqa: F401
        except ImportError:
            return None
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1), "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def git_commit() -> Optional[str]:
    """``<sha>`` (``+dirty`` when the checkout has changes) of the source checkout, or None."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + ("+dirty" if dirty else "")) or None


def machine_info(threads: int) -> Dict[str, Any]:
    """Everything the JSON's ``machine`` block records."""
    gpu = gpu_info()
    return {
        "kind": "cuda" if gpu else "cpu",
        "cpu": cpu_model(), "cpu_threads_available": cpu_threads(), "threads": int(threads),
        "memory_gib": memory_gib(), "gpu": gpu,
        "platform": platform.platform(),
        "load_average_start": load_average(),
        "versions": versions(), "git": git_commit(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
