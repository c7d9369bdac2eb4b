"""The paired oracle: how far a method's parameterisation *could* go on a known avatar transform.

It trains the method's layout slice (the same entries ``domain-mod``/``stylespace``/``genda`` train) on
the paired error itself, ``|G_d(w) − T(G(w))|``, over fresh latents each step. No real user has these
pairs, so this is not an adaptation method: it is the bound that separates a parameterisation's
capacity from its losses. When a method trained with its embedder losses stays far above the oracle,
the losses (the direction, the embedder) are what falls short, not the few hundred parameters.
Its paired error is measured on the same seeded latents as ``gandapt-train eval`` (different from the
training latents).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from gandapt.errors import GandaptError


def paired_oracle(model: str, transform: str, method: str = "domain-mod", variant: Optional[str] = None,
                  steps: int = 200, batch: int = 8, lr: Optional[float] = None, seed: int = 0,
                  paired_n: int = 128, truncation: float = 0.7,
                  on_step: Optional[Callable[[int, float], None]] = None) -> Dict[str, Any]:
    """Train ``method``'s layout slice on the paired L1 to ``transform``; return its paired error.

    Args:
        model: base model path.
        transform: a known avatar transform (``gandapt-train data transform --list``).
        method: ``domain-mod``, ``stylespace`` or ``genda`` (their layout entries; finetune has none).
        variant: the method's variant (default: its first).
        steps, batch: optimisation budget (latents per step).
        lr: Adam step (default: the method's).
        on_step: called with (step, training L1 in [-1, 1] units) after each step.

    Returns:
        ``paired_error``'s dict plus ``method``, ``variant``, ``steps`` and ``trainable_params``.

    Raises:
        GandaptError: an unknown method/transform, or finetune (no layout slice to bound).
    """
    import gandapt
    from gandapt.trainer.adapters.evaluate import DomainGenerator, _uint8, paired_error
    from gandapt.trainer.adapters.methods import METHODS
    from gandapt.trainer.adapters.param import LayoutParam
    from gandapt.trainer.data.transforms import apply_transform, get_transform

    if method not in METHODS or method == "finetune":
        raise GandaptError(f"the paired oracle bounds a layout method; choose from "
                           f"{', '.join(m for m in METHODS if m != 'finetune')}")
    get_transform(transform)  # raises with the list of known transforms
    m = METHODS[method]
    variant = variant or m.variants[0]
    if variant not in m.variants:
        raise GandaptError(f"{method} has no variant {variant!r}; choose from {', '.join(m.variants)}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise GandaptError(f"--lr must be a finite number > 0, got {lr}")
    G = gandapt.load(model, with_d=False).G.eval().requires_grad_(False)
    layout = G.synthesis.set_domain_stages()
    param = LayoutParam(layout, m.select(layout, variant))
    opt = torch.optim.Adam(param.parameters(), lr=m.lr if lr is None else lr)
    gen = torch.Generator().manual_seed(seed + 1)  # training latents: not the evaluation's seed
    for step in range(1, steps + 1):
        z = torch.randn(batch, G.z_dim, generator=gen)
        with torch.no_grad():
            ws = G.mapping(z, truncation_psi=truncation)                        # [B, num_ws, w_dim]
            base = _uint8(G.synthesis(ws, noise_mode="const"))                 # [B, R, R, 3] uint8
            target = np.stack([apply_transform(transform, im) for im in base])
            target = torch.from_numpy(target).permute(0, 3, 1, 2).float() / 127.5 - 1  # [B, 3, R, R]
        loss = (G.synthesis(ws, domain=param(), noise_mode="const") - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step, float(loss.detach()))
    G_d = DomainGenerator(G, param().detach()[0]).eval()
    out = paired_error(G_d, DomainGenerator(G, None).eval(), transform, paired_n, seed, truncation)
    return {**out, "method": method, "variant": variant, "steps": steps, "trainable_params": param.num_params}
