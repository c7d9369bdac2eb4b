"""The FID Inception's 2048-d pool features as a differentiable embedding.

Same network and preprocessing as :mod:`gandapt.trainer.metrics.inception` (NVIDIA's
TF-compatible InceptionV3), minus the 8-bit rounding, so gradients reach the images. Costly on CPU
(299 px input); use it for evaluation-aligned losses, not as the default training tower.
"""

from __future__ import annotations

import torch

from gandapt.trainer.embedders.base import Embedder
from gandapt.trainer.metrics.inception import FEATURE_DIM, load_network, preprocess


class InceptionEmbedder(Embedder):
    """Images [N, 3, H, W] in [-1, 1] → [N, 2048] Inception pool features."""

    name = "inception"
    dim = FEATURE_DIM

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_device_probe", torch.zeros(0))

    def _embed_image(self, img: torch.Tensor) -> torch.Tensor:
        net = load_network(str(self._device_probe.device))
        return net(preprocess(img, quantize=False)).float()
