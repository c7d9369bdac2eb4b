"""The Embedder interface and the factory that builds one by name."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gandapt.errors import GandaptError


class Embedder(nn.Module):
    """An image tower, optionally with a text tower, mapping into one embedding space.

    Subclasses set :attr:`name` and :attr:`dim` and implement :meth:`_embed_image` (and
    :meth:`_embed_text` when :attr:`has_text`). Weights are frozen; gradients flow to the *input*
    images, which is what the adaptation losses need.
    """

    name: str = "embedder"
    dim: int = 0
    has_text: bool = False

    def freeze(self) -> "Embedder":
        self.eval().requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "Embedder":  # frozen towers never leave eval mode
        return super().train(False)

    def encode_image(self, img: torch.Tensor) -> torch.Tensor:
        """Embed images.

        Args:
            img: [N, 3, H, W], RGB in [-1, 1] (the generator's convention).

        Returns:
            [N, dim], not normalised (losses normalise where their formula does).
        """
        if img.ndim != 4 or img.shape[1] != 3:
            raise GandaptError(f"{self.name} embeds RGB images [N, 3, H, W], got {list(img.shape)}")
        return self._embed_image(img)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed prompts: [len(texts), dim].

        Raises:
            GandaptError: this embedder has no text tower (only CLIP has one).
        """
        if not self.has_text:
            raise GandaptError(f"the {self.name} embedder has no text tower; text targets need CLIP "
                               "(--embedder clip --clip PATH), or give target images instead")
        return self._embed_text(list(texts))

    def _embed_image(self, img: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError


def resize_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """Bicubic resize [N, C, H, W] → [N, C, size, size] (antialiased when shrinking)."""
    if img.shape[-1] == size and img.shape[-2] == size:
        return img
    return F.interpolate(img, size=(size, size), mode="bicubic", align_corners=False,
                         antialias=img.shape[-1] > size)


def _vgg(**kw: Any) -> Embedder:
    from gandapt.trainer.embedders.vgg import VGGEmbedder
    return VGGEmbedder(**kw)


def _inception(**kw: Any) -> Embedder:
    from gandapt.trainer.embedders.inception import InceptionEmbedder
    return InceptionEmbedder(**kw)


def _disc(**kw: Any) -> Embedder:
    from gandapt.trainer.embedders.disc import DiscriminatorEmbedder
    return DiscriminatorEmbedder(**kw)


def _clip(**kw: Any) -> Embedder:
    from gandapt.trainer.embedders.clip import CLIPEmbedder
    return CLIPEmbedder(**kw)


# name -> factory(**options); each documents its options.
EMBEDDERS: Dict[str, Callable[..., Embedder]] = {"vgg": _vgg, "inception": _inception, "disc": _disc, "clip": _clip}


def build_embedder(name: str, device: Optional[torch.device] = None, **options: Any) -> Embedder:
    """Build a frozen embedder by name (``vgg``, ``inception``, ``disc``, ``clip``).

    Args:
        name: one of :data:`EMBEDDERS`.
        device: where it runs.
        **options: the embedder's own options (``disc`` needs ``D``; ``clip`` needs ``checkpoint``).
    """
    if name not in EMBEDDERS:
        raise GandaptError(f"unknown embedder {name!r}; choose from {', '.join(EMBEDDERS)}")
    emb = EMBEDDERS[name](**options).freeze()
    return emb.to(device) if device is not None else emb


def embedder_for(name: str, D=None, clip: Optional[str] = None, clip_arch: Optional[str] = None,
                 clip_config: Optional[str] = None, device: Optional[torch.device] = None) -> Embedder:
    """The embedder a trainer's options (or a saved model's embedder record) name: ``disc`` gets the
    base model's ``D``, ``clip`` the local checkpoint settings; the others take no options."""
    kw: Dict[str, Any] = {}
    if name == "disc":
        kw["D"] = D
    elif name == "clip":
        kw.update(checkpoint=clip, arch=clip_arch, config=clip_config)
    return build_embedder(name, device=device, **kw)


def embedder_from_options(options: Any, D, device: Optional[torch.device] = None) -> Embedder:
    """:func:`embedder_for` with a trainer's options (``embedder``, ``clip``, ``clip_arch``, ``clip_config``)."""
    return embedder_for(options.embedder, D, options.clip, options.clip_arch, options.clip_config, device)
