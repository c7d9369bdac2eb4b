"""What each single-domain method trains in the layout, and its paper-derived defaults.

* ``domain-mod`` — HyperDomainNet's domain-modulation vector d = 1 + δ on the input channels of every
  modulated conv, applied after demodulation (Alanov et al. 2022; reference/methods.md §2.1/2.5):
  layout ``in_scale.*``. Defaults from HDN's single-domain configs: lr 0.02, direction 1 +
  in-domain angle, ``offsets_l2``.
* ``stylespace`` — StyleDomain's StyleSpace directions Δs added before demodulation (Alanov et al.
  2023; §3.2): layout ``s_shift.*``; ``conv`` = the 17 convs at 1024 (6k-style), ``all`` = convs and
  ToRGB (9k-style); ``--sparse F`` keeps the top F of |Δs| afterwards (StyleSpaceSparse, F = 0.2).
  Defaults from ``td_nada_ffhq_sdelta``: lr 0.05, 250 iterations, direction 1 + in-domain 0.25.
* ``genda`` — GenDA's attribute adaptor on W+ (``w_scale``/``w_shift``; ``per-row`` or ``shared``
  across rows) plus the last ToRGB (``rgb_dW``/``rgb_db``), trained against an attribute classifier
  on the frozen discriminator (§7). The paper gives no learning rate; 0.01 for the adaptor.
* ``finetune`` — every synthesis weight (StyleGAN-NADA's setting, §1: mapping frozen), the baseline
  the adapters beat; it writes a new base model, not a pack. Adam lr 0.002, betas (0, 0.99).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from gandapt.layout import DomainLayout


@dataclass(frozen=True)
class Method:
    """One layout-slice method.

    Attributes:
        name: CLI name.
        stages: layout stages the domain uses (what the exported graph bakes in).
        select: ``select(layout, variant) -> entry names`` to train.
        variants: allowed ``--variant`` values (first = default).
        lr, steps, batch: defaults.
        losses: default loss weights (``direction``, ``indomain``, ``l2``).
    """

    name: str
    stages: Tuple[str, ...]
    select: Callable[[DomainLayout, str], Tuple[str, ...]]
    variants: Tuple[str, ...]
    lr: float
    steps: int
    batch: int
    losses: Dict[str, float]


def _in_scales(layout: DomainLayout, variant: str) -> Tuple[str, ...]:
    return tuple(n for n in layout.names if n.startswith("in_scale."))


def _s_shifts(layout: DomainLayout, variant: str) -> Tuple[str, ...]:
    names = tuple(n for n in layout.names if n.startswith("s_shift."))
    return names if variant == "all" else tuple(n for n in names if not n.endswith(".torgb"))


def _genda(layout: DomainLayout, variant: str) -> Tuple[str, ...]:
    last = layout.names[-1].split(".", 1)[1]  # rgb_db.b{R}.torgb: the last ToRGB
    return ("w_scale", "w_shift", f"rgb_dW.{last}", f"rgb_db.{last}")


METHODS: Dict[str, Method] = {
    "domain-mod": Method("domain-mod", ("in",), _in_scales, ("default",), lr=0.02, steps=300, batch=4,
                         losses={"direction": 1.0, "indomain": 0.5, "l2": 0.5}),
    "stylespace": Method("stylespace", ("s",), _s_shifts, ("conv", "all"), lr=0.05, steps=250, batch=4,
                         losses={"direction": 1.0, "indomain": 0.25, "l2": 0.0}),
    "genda": Method("genda", ("w", "rgb"), _genda, ("per-row", "shared"), lr=0.01, steps=300, batch=8,
                    losses={"direction": 0.0, "indomain": 0.0, "l2": 0.0}),
    "finetune": Method("finetune", (), lambda layout, variant: (), ("default",), lr=0.002, steps=300, batch=4,
                       losses={"direction": 1.0, "indomain": 0.5, "l2": 0.0}),
}
