"""Image grids for training snapshots (PNG via OpenCV, atomic)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from gandapt.io import atomic_write_bytes


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] → uint8 [N, H, W, 3] (RGB)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: torch.Tensor, cols: int = 0) -> np.ndarray:
    """Tile [N, 3, H, W] images into one uint8 RGB array [rows·H, cols·W, 3]."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.zeros((rows * h, cols * w, c), np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * h : (r + 1) * h, q * w : (q + 1) * w] = arr[i]
    return grid


def save_grid(images: torch.Tensor, path: Path, cols: int = 0, force: bool = True) -> Path:
    """Write a PNG grid of ``images`` [N, 3, H, W] in [-1, 1] to ``path`` atomically."""
    import cv2

    ok, buf = cv2.imencode(".png", make_grid(images, cols)[:, :, ::-1])  # OpenCV wants BGR
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    return atomic_write_bytes(path, buf.tobytes(), force=force)
