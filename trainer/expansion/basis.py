"""The latent basis of Domain Expansion and its dormant directions.

Domain Expansion (Nitzan et al., CVPR 2023; reference/methods.md §5.1) repurposes latent directions
the base model barely uses. The paper takes the SeFa basis (SVD of the affine weights) and the
last columns; here the basis is the PCA of W, i.e. of mapping outputs w = f(z): a direction along
which f's outputs hardly vary is one the base model's images never explore, so moving far along it
is free for a new domain while every image the base model actually produces stays where it was.

Why PCA and not SeFa: gandapt keeps the runtime exact without a model-level projection. The paper
projects every w onto the base subspace (components along repurposed dims replaced by the mean's),
a 512×512 map the runtime layout cannot express. With low-variance directions the natural
component of w along v_d is already tiny (std ``stds[d]`` ≪ the shift), and the base regulariser
trains the expanded G on *unprojected* latents, so G_exp(w) ≈ G(w) and G_exp(w + s·v_d) is the
domain, both exactly what the runtime computes with a ``w_shift`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gandapt.errors import GandaptError


@dataclass(frozen=True)
class LatentBasis:
    """PCA of W with its dormant tail.

    Attributes:
        mean: [w_dim] mean w.
        directions: [w_dim, w_dim] unit columns, ordered by *increasing* std (column 0 is the most
            dormant).
        stds: [w_dim] std of w along each column (same order).
        num_dormant: how many leading columns count as dormant (std < ratio × largest std).
        ratio: the dormancy threshold used.
    """

    mean: torch.Tensor
    directions: torch.Tensor
    stds: torch.Tensor
    num_dormant: int
    ratio: float

    @property
    def max_std(self) -> float:
        """Std of w along its most used direction (the unit of the subspace distance)."""
        return float(self.stds[-1])

    def to_dict(self) -> dict:
        """Plain data for ``model.pt``'s ``extra['expansion']``."""
        return {"mean": self.mean.cpu(), "directions": self.directions.cpu(), "stds": self.stds.cpu(),
                "num_dormant": self.num_dormant, "ratio": self.ratio}


@torch.no_grad()
def latent_basis(G: torch.nn.Module, n: int = 4096, ratio: float = 0.1, seed: int = 0) -> LatentBasis:
    """PCA of ``n`` seeded mapping outputs of ``G`` and the count of dormant directions.

    Args:
        G: the base generator (its mapping network is used, without truncation).
        n: latents sampled (>= 2·w_dim keeps the covariance full rank).
        ratio: a direction is dormant when its std is below ``ratio`` × the largest std.
        seed: seed of the sampled z.

    Returns:
        The :class:`LatentBasis` (on ``G``'s device).

    Raises:
        GandaptError: a bad ``n`` or ``ratio``.
    """
    if n < 2:
        raise GandaptError(f"the latent PCA needs at least 2 samples, got {n}")
    if not 0 < ratio < 1:
        raise GandaptError(f"the dormancy ratio must lie in (0, 1), got {ratio}")
    device = G.mapping.w_avg.device
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    w = G.mapping(z)[:, 0].double()                                   # [n, w_dim]
    mean = w.mean(0)
    cov = (w - mean).T @ (w - mean) / (n - 1)                         # [w_dim, w_dim]
    evals, evecs = torch.linalg.eigh(cov)                             # ascending eigenvalues
    stds = evals.clamp_min(0).sqrt()
    # eigh's signs are arbitrary: make each column's largest-magnitude entry positive (reproducible)
    pivot = evecs.abs().argmax(0)
    evecs = evecs * torch.sign(evecs[pivot, torch.arange(evecs.shape[1], device=device)])
    num_dormant = int((stds < ratio * stds[-1]).sum())
    return LatentBasis(mean.float(), evecs.float(), stds.float(), num_dormant, float(ratio))
