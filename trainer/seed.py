"""Seeded module initialisation: a run's ``--seed`` fixes its trained networks' starting weights.

``nn.Module`` constructors draw from torch's global RNG. Building a trainer's networks inside
:func:`seeded` makes two runs with the same seed start from the same weights (so they train to the
same result), without resetting the global RNG for anything that runs afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU RNG seeded by ``seed``; its previous state is restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
