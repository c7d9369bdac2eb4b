"""A trainable subset of a domain layout: the domain vector as a differentiable function."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from gandapt.errors import GandaptError
from gandapt.layout import DomainLayout


class LayoutParam(nn.Module):
    """The entries ``names`` of ``layout`` as one trainable vector; everything else stays identity.

    Calling it gives the domain vector ``[1, D]`` that ``G.synthesis(ws, domain=...)`` takes.
    """

    def __init__(self, layout: DomainLayout, names: Sequence[str]):
        super().__init__()
        if not names:
            raise GandaptError("no layout entries to train; the method selected nothing for this generator")
        self.layout, self.names = layout, tuple(names)
        index = np.concatenate([np.arange(layout.slice(n).start, layout.slice(n).stop) for n in self.names])
        identity = torch.from_numpy(layout.identity())
        self.register_buffer("identity", identity)                          # [D]
        self.register_buffer("index", torch.from_numpy(index).long())       # [P]
        self.values = nn.Parameter(identity[self.index].clone())             # [P], starts at identity

    @property
    def num_params(self) -> int:
        return self.values.numel()

    def forward(self) -> torch.Tensor:
        """[1, D] domain vector."""
        return self.identity.index_put((self.index,), self.values).unsqueeze(0)

    def offset(self) -> torch.Tensor:
        """Trainable values minus their identity [P] (what regularisers see)."""
        return self.values - self.identity[self.index]

    def vector(self) -> np.ndarray:
        """The current domain as a float32 numpy vector [D]."""
        with torch.no_grad():
            return self().squeeze(0).cpu().numpy().astype(np.float32)
