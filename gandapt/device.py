"""The ``--device`` every command takes, checked once: a name the machine cannot run on fails with
one line that says what to pass instead, not with a CUDA driver traceback halfway into a run."""

from __future__ import annotations

import os

import torch

from gandapt.errors import GandaptError

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device ``name`` names, after checking that this machine has it.

    ``auto`` is the first CUDA GPU when one is visible, else the CPU. A bare ``cuda`` under torchrun
    is the GPU of the process's ``LOCAL_RANK``; a CUDA device also becomes the current one, so
    kernels launched without an explicit device land on it.

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (``mps`` where PyTorch has it).

    Returns:
        The device.

    Raises:
        GandaptError: an unknown name, CUDA asked for on a machine without a visible GPU, or a GPU
            index past the last one.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GandaptError(f"unknown device {name!r}; pass --device {CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GandaptError(f"--device {name}: no CUDA GPU is visible to PyTorch on this machine; "
                               "pass --device cpu (or auto)")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        count = torch.cuda.device_count()
        if device.index >= count:
            raise GandaptError(f"--device {name}: this machine has {count} GPU(s), cuda:0 … cuda:{count - 1}")
        torch.cuda.set_device(device)
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise GandaptError(f"--device {name}: PyTorch has no MPS backend here; pass --device cpu")
    elif device.type != "cpu":
        raise GandaptError(f"--device {name}: gandapt runs on {CHOICES}")
    return device
