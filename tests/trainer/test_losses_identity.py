"""The identity loss through an inversion encoder (DynaGAN's ArcFace term, offline)."""

import pytest
import torch

from gandapt.trainer.losses.identity import EncoderIdentity


def test_identity_loss_is_zero_for_the_same_images_and_grows_with_a_content_change(tiny_encoder_files):
    E = tiny_encoder_files[0]
    ident = EncoderIdentity(E)
    assert ident.rows == E.config.groups[0]
    gen = torch.Generator().manual_seed(0)
    R = E.config.img_resolution
    base = torch.rand(4, 3, R, R, generator=gen) * 2 - 1
    assert float(ident(base, base)) == pytest.approx(0.0, abs=1e-5)
    near = base + 0.02 * torch.randn(base.shape, generator=gen)
    other = base.roll(1, dims=0)  # each image paired with another one
    assert 0 < float(ident(near, base)) < float(ident(other, base))


def test_identity_loss_trains_the_adapted_images_only(tiny_encoder_files):
    ident = EncoderIdentity(tiny_encoder_files[0])
    R = ident.E.config.img_resolution
    gen = torch.Generator().manual_seed(1)
    adapted = (torch.rand(2, 3, R, R, generator=gen) * 2 - 1).requires_grad_(True)
    base = (torch.rand(2, 3, R, R, generator=gen) * 2 - 1).requires_grad_(True)
    ident(adapted, base).backward()
    assert adapted.grad is not None and float(adapted.grad.abs().max()) > 0
    assert base.grad is None                                   # the base images are the fixed reference
    assert all(p.grad is None for p in ident.parameters())     # the encoder is frozen
