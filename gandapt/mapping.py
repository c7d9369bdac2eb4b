"""Mapping network z → ws with truncation around the checkpoint's own average latent."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from gandapt.layers import FullyConnected


def normalize_2nd_moment(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """z · rsqrt(mean(z², dim=1) + eps) (rosinality ``PixelNorm``). [N, z_dim] → [N, z_dim]."""
    return z * (z.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """``num_layers`` equalized-lr FC layers with leaky ReLU, then broadcast to ``num_ws`` rows.

    State-dict keys follow NVlabs: ``fc{i}.weight``, ``fc{i}.bias``, ``w_avg``.
    """

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        lr_mul: float = 0.01,   # mapping layers learn 100× slower (StyleGAN §C)
        w_avg_beta: float = 0.995,  # EMA decay for tracking w_avg during training
    ):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta
        for i in range(num_layers):
            fc = FullyConnected(z_dim if i == 0 else w_dim, w_dim, lrelu=True, lr_mul=lr_mul)
            setattr(self, f"fc{i}", fc)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor,
        truncation_psi: Union[float, torch.Tensor] = 1.0,
        truncation_cutoff: Optional[int] = None,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        """Map latents to W+.

        Args:
            z: latents [N, z_dim].
            truncation_psi: ψ as a float, or a tensor [] / [N] (an ONNX input at export); ws move
                to ``w_avg + ψ·(w − w_avg)``.
            truncation_cutoff: truncate only the first this-many rows (None: all rows).
            update_w_avg: training only — track the running mean of w.

        Returns:
            ws [N, num_ws, w_dim].
        """
        x = normalize_2nd_moment(z)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return ws
        rows = self.num_ws if truncation_cutoff is None else truncation_cutoff
        if isinstance(truncation_psi, torch.Tensor):
            psi = truncation_psi.to(ws.dtype).reshape(-1, 1, 1)  # [] or [N] → broadcast over rows
            head = self.w_avg + psi * (ws[:, :rows] - self.w_avg)
        else:
            head = self.w_avg.lerp(ws[:, :rows], truncation_psi)
        return torch.cat([head, ws[:, rows:]], dim=1) if rows < self.num_ws else head
