"""Make domains from reference images with a trained domain encoder (no training; methods.md §6.3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch

from gandapt.errors import GandaptError
from gandapt.layout import DomainLayout
from gandapt.pack import Domain, DomainPack
from gandapt.trainer.degan.file import DomainEncoderFile, load_domain_encoder
from gandapt.trainer.degan.model import STAGES, DomainVector

ImageLike = Union[str, os.PathLike, np.ndarray, torch.Tensor]


def read_reference(image: ImageLike, resolution: int) -> torch.Tensor:
    """A reference image as [1, 3, R, R] float in [-1, 1].

    Args:
        image: an image file (PNG/JPG; centre-cropped and resized), a uint8 RGB array [H, W, 3], or a
            float tensor [3, R, R] / [1, 3, R, R] already in [-1, 1].
        resolution: the encoder's input size R.

    Raises:
        GandaptError: a missing or unreadable file, or an array/tensor of another shape or dtype.
    """
    from gandapt.trainer.metrics.evaluate import load_image

    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise GandaptError(f"reference image {path} not found; give a PNG or JPG file")
        x = load_image(path, resolution)                                       # [3, R, R] uint8; raises GandaptError
        return (x.float() / 127.5 - 1)[None]
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise GandaptError(f"a reference image array must be uint8 RGB [H, W, 3], got {image.dtype} "
                               f"{list(image.shape)}")
        import PIL.Image

        im = PIL.Image.fromarray(image)
        if im.size != (resolution, resolution):
            w, h = im.size
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            im = im.resize((resolution, resolution), PIL.Image.LANCZOS)
        return torch.from_numpy(np.array(im)).permute(2, 0, 1).float()[None] / 127.5 - 1
    if isinstance(image, torch.Tensor):
        x = image[None] if image.ndim == 3 else image
        if x.ndim != 4 or x.shape[:2] != (1, 3) or x.shape[2:] != (resolution, resolution) or not x.is_floating_point():
            raise GandaptError(f"a reference image tensor must be float [3, {resolution}, {resolution}] in [-1, 1], "
                               f"got {x.dtype} {list(image.shape)}")
        if not torch.isfinite(x).all():
            raise GandaptError("the reference image tensor holds NaN or inf")
        return x.float()
    raise GandaptError(f"cannot read a reference image from a {type(image).__name__}; give a file path, a uint8 "
                       "RGB array or a float tensor")


def _as_file(encoder: Union[DomainEncoderFile, str, os.PathLike]) -> DomainEncoderFile:
    return encoder if isinstance(encoder, DomainEncoderFile) else load_domain_encoder(encoder)


@torch.no_grad()
def domain_from_image(encoder: Union[DomainEncoderFile, str, os.PathLike], image: ImageLike,
                      layout: Optional[DomainLayout] = None) -> np.ndarray:
    """One forward pass: a reference image → its domain vector.

    Args:
        encoder: a loaded domain encoder or the path of one.
        image: see :func:`read_reference`.
        layout: the layout to return the vector in (default: the base model's ``s``-stage layout); any
            layout of the same generator that includes stage ``s``.

    Returns:
        float32 [D] of ``layout``: ``s_shift.*`` = Δs, everything else identity.

    Raises:
        GandaptError: an unreadable image, or a layout of another generator or without stage ``s``.
    """
    enc = _as_file(encoder)
    device = next(enc.E.parameters()).device
    x = read_reference(image, enc.config.img_resolution).to(device)
    s_layout = DomainLayout(enc.base_config, STAGES)
    vec = DomainVector(s_layout, enc.config).to(device)(enc.E(x))[0].cpu().numpy().astype(np.float32)
    if layout is None:
        return vec
    if layout.config != enc.base_config:
        raise GandaptError("the layout belongs to another generator than the domain encoder's base model; "
                           "use a layout of that model")
    return s_layout.convert(vec, layout)


def pack_from_images(encoder: Union[DomainEncoderFile, str, os.PathLike], images: Mapping[str, ImageLike],
                     meta: Optional[Mapping[str, Any]] = None) -> DomainPack:
    """A domain pack with one domain per ``{name: reference image}``, for the encoder's base model."""
    enc = _as_file(encoder)
    layout = DomainLayout(enc.base_config, STAGES)
    domains = [Domain.from_vector(name, layout, domain_from_image(enc, img), meta={
        "method": "degan", "reference": str(img) if isinstance(img, (str, os.PathLike)) else "array",
        "encoder": str(enc.path)}) for name, img in images.items()]
    return DomainPack(domains, enc.base_config, enc.base_fingerprint or None,
                      meta={"made_by": "gandapt-train degan", **dict(meta or {})})
