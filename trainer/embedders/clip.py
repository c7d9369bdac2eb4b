"""CLIP through open_clip, from a local checkpoint only (gandapt never downloads weights).

Preprocessing as every CLIP-guided method does it (reference/methods.md §8): [-1, 1] → [0, 1],
bicubic resize to the tower's input size (images here are square, so the centre crop is a no-op),
CLIP's mean/std. Text prompts are embedded through templates and averaged (NADA, HDN) — by default
the 80 ImageNet templates of CLIP's zero-shot evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from gandapt.errors import GandaptError
from gandapt.trainer.embedders.base import Embedder, resize_square

NO_CHECKPOINT = ("CLIP needs a local checkpoint: pass --clip PATH (open_clip weights for --clip-arch, e.g. "
                 "ViT-B-32); gandapt never downloads weights. Without CLIP use image targets with "
                 "--embedder vgg or disc")


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise GandaptError("the clip embedder needs open_clip: pip install open-clip-torch==3.3.0 "
                           "(or pip install 'gandapt[train]')") from None
    return open_clip


class CLIPEmbedder(Embedder):
    """open_clip image + text towers.

    Args:
        checkpoint: local weights file (``.pt``/``.bin``/``.safetensors``) for ``arch``.
        arch: open_clip model name (``ViT-B-32``, ``ViT-B-16``, ...) or, with ``config``, the name of
            a custom architecture.
        config: a JSON model config (open_clip's format) registering ``arch`` — how tests build a
            tiny random CLIP.
        templates: prompt templates with one ``{}``; None: the 80 ImageNet templates.
    """

    name = "clip"
    has_text = True

    def __init__(self, checkpoint: Optional[str] = None, arch: str = "ViT-B-32", config: Optional[str] = None,
                 templates: Optional[Sequence[str]] = None):
        super().__init__()
        if not checkpoint:
            raise GandaptError(NO_CHECKPOINT)
        if not Path(checkpoint).is_file():
            raise GandaptError(f"CLIP checkpoint {checkpoint} does not exist; {NO_CHECKPOINT}")
        oc = _open_clip()
        if config is not None:
            oc.add_model_config(config)
        if arch not in oc.list_models():
            raise GandaptError(f"unknown open_clip architecture {arch!r}; pass --clip-arch with a name from "
                               "open_clip.list_models() or --clip-config JSON")
        try:
            self.model = oc.create_model(arch, pretrained=str(checkpoint), weights_only=True)
        except Exception as err:  # noqa: BLE001 (open_clip raises many kinds on a bad file)
            raise GandaptError(f"cannot load CLIP {arch} from {checkpoint}: {str(err).splitlines()[0][:200]}; "
                               "check that the weights belong to that architecture") from None
        self.tokenizer = oc.get_tokenizer(arch)
        size = self.model.visual.image_size
        self.size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.dim = int(self.model.text_projection.shape[-1]) if hasattr(self.model, "text_projection") \
            else int(self.model.visual.output_dim)
        self.templates = tuple(templates) if templates is not None else \
            tuple(t("{}") for t in oc.OPENAI_IMAGENET_TEMPLATES)
        self.register_buffer("mean", torch.tensor(oc.OPENAI_DATASET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(oc.OPENAI_DATASET_STD).view(1, 3, 1, 1))

    def _embed_image(self, img: torch.Tensor) -> torch.Tensor:
        x = resize_square((img + 1) / 2, self.size)
        return self.model.encode_image((x - self.mean) / self.std).float()

    def _embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        device = self.mean.device
        out = []
        for text in texts:
            tokens = self.tokenizer([t.format(text) for t in self.templates]).to(device)
            e = self.model.encode_text(tokens).float()
            out.append(torch.nn.functional.normalize(e, dim=-1).mean(0))   # template average
        return torch.stack(out)                                            # [T, dim]
