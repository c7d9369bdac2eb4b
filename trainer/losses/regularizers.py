"""Regularisers on a domain's tensors."""

from __future__ import annotations

import torch


def l2_to_identity(vec: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of a domain vector [D] (or [N, D]) from the identity domain [D]
    (HyperDomainNet's ``offsets_l2``, as a mean so the weight does not depend on the layout size)."""
    return (vec - identity).pow(2).mean()
