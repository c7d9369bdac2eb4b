"""Embedders: image (and optionally text) towers the adaptation losses are written against.

Every loss in :mod:`gandapt.trainer.losses` sees only the :class:`~.base.Embedder` interface, so a
method trains with CLIP where a local checkpoint exists and with the offline towers (VGG19,
Inception, the GAN's own discriminator) everywhere else. :func:`build_embedder` makes one by name.
"""

from gandapt.trainer.embedders.base import EMBEDDERS, Embedder, build_embedder, embedder_for, embedder_from_options

__all__ = ["EMBEDDERS", "Embedder", "build_embedder", "embedder_for", "embedder_from_options"]
