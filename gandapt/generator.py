"""StyleGAN2 generator: mapping + synthesis, with the domain as a runtime input."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from gandapt.config import GeneratorConfig
from gandapt.mapping import MappingNetwork
from gandapt.synthesis import SynthesisNetwork


class Generator(nn.Module):
    """z → ws → image. ``G.mapping`` and ``G.synthesis`` are usable on their own (NVlabs API).

    Args:
        config: the architecture; widths, depths and variant all come from it.
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.z_dim, self.w_dim = config.z_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.num_ws = config.num_ws
        self.synthesis = SynthesisNetwork(config)
        self.mapping = MappingNetwork(
            config.z_dim, config.w_dim, config.num_ws, config.mapping_layers, config.mapping_lr_mul
        )

    @property
    def layout(self):
        """The :class:`~gandapt.layout.DomainLayout` the ``domain`` input follows."""
        return self.synthesis.layout

    def forward(
        self,
        z: torch.Tensor,                                  # [N, z_dim]
        truncation_psi: Union[float, torch.Tensor] = 1.0,
        truncation_cutoff: Optional[int] = None,
        noise_mode: str = "const",
        domain: Optional[torch.Tensor] = None,            # [N, D] or [1, D]
    ) -> torch.Tensor:
        """Generate images [N, img_channels, R, R] from latents, optionally in a domain."""
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, domain=domain, noise_mode=noise_mode)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean mapping output over ``n`` seeded random z — the usual stand-in for a missing w_avg.

        Returns:
            [w_dim].
        """
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=g).to(self.mapping.w_avg.device)
        return self.mapping(z)[:, 0].mean(dim=0)
