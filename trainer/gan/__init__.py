"""Base StyleGAN2 training from scratch (non-saturating loss, lazy R1, EMA, DiffAugment, DDP)."""

from gandapt.trainer.gan.options import BaseTrainOptions  # noqa: F401
