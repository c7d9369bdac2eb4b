"""Target images of a one-/few-shot domain: a folder, the first ``shots`` images by name."""

from __future__ import annotations

from typing import Optional

import torch

from gandapt.errors import GandaptError


def load_targets(folder: str, resolution: int, shots: Optional[int] = None) -> torch.Tensor:
    """Images of ``folder`` as [N, 3, R, R] float in [-1, 1] (centre-cropped and Lanczos-resized).

    Raises:
        GandaptError: the folder is missing or holds no images.
    """
    from gandapt.trainer.metrics.evaluate import list_images, load_image

    try:
        files = list_images(folder)
    except GandaptError as err:
        raise GandaptError(f"--target {folder}: {err}; give a folder of PNG/JPG target images") from None
    files = files[:shots] if shots else files
    x = torch.stack([load_image(f, resolution) for f in files])      # [N, 3, R, R] uint8
    return x.float() / 127.5 - 1
