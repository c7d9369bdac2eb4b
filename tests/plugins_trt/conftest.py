"""Run Triton kernels in interpreter mode on CPU tensors (must be set before the kernel module is imported)."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
