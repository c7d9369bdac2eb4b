"""StyleGAN2 losses: non-saturating logistic (Goodfellow et al. 2014) and lazy R1 (Mescheder et al. 2018).

R1 runs every ``r1_interval`` D steps and is scaled by the interval so its average strength is that
of an every-step penalty (StyleGAN2 §3.1, "lazy regularization").
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch
import torch.nn.functional as F


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss: mean softplus(−D(G(z))). logits [N, 1] → scalar."""
    return F.softplus(-fake_logits).mean()


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic D loss: mean softplus(D(G(z))) + softplus(−D(x)). [N, 1], [N, 1] → scalar."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def d_loss_with_r1(
    D: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,                 # [N, C, H, W]
    fake: torch.Tensor,                 # [N, C, H, W], detached
    augment: Callable[[torch.Tensor], torch.Tensor],
    r1_weight: float,                   # γ/2 · interval on an R1 step, 0 otherwise
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D loss, with R1 = ‖∇ₓD(x)‖² folded into the same real pass when ``r1_weight`` > 0.

    Returns:
        (total loss, logistic part, mean R1 penalty — 0 when not computed).
    """
    real = real.detach().requires_grad_(r1_weight > 0)
    real_logits = D(augment(real))
    fake_logits = D(augment(fake))
    main = d_loss(real_logits, fake_logits)
    if r1_weight <= 0:
        return main, main.detach(), torch.zeros([])
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    r1 = grad.square().sum(dim=[1, 2, 3]).mean()
    return main + r1 * r1_weight, main.detach(), r1.detach()
