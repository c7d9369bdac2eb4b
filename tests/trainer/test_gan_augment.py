"""DiffAugment: shapes, differentiability, per-sample randomness, reproducibility, policy parsing."""

import pytest
import torch

from gandapt.errors import GandaptError
from gandapt.trainer.gan.augment import diff_augment, parse_policy


def test_policy_parsing():
    assert parse_policy("color, translation") == ("color", "translation")
    assert parse_policy("none") == () == parse_policy("")
    with pytest.raises(GandaptError, match="unknown augmentation 'flip'"):
        parse_policy("color,flip")


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), ("color", "translation", "cutout")])
def test_augment_is_differentiable_and_reproducible(policy):
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    a = diff_augment(x, policy, torch.Generator().manual_seed(1))
    b = diff_augment(x, policy, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not torch.allclose(a, x)
    # samples get different transforms
    assert not torch.allclose(a[0] - x[0], a[1] - x[1])


def test_translation_moves_content_and_fills_zeros():
    x = torch.zeros(8, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1
    y = diff_augment(x, ("translation",), torch.Generator().manual_seed(0))
    assert torch.all(y.sum(dim=[1, 2, 3]) == 16)  # a 2-pixel shift keeps the 4×4 square inside
    centres = (y[:, 0] * torch.arange(16.0)[None, :, None]).sum(dim=[1, 2]) / 16
    assert centres.unique().numel() > 1
    assert set(y.unique().tolist()) <= {0.0, 1.0}


def test_cutout_zeroes_a_square():
    x = torch.ones(6, 3, 16, 16)
    y = diff_augment(x, ("cutout",), torch.Generator().manual_seed(0))
    zeroed = (y[:, 0] == 0).sum(dim=[1, 2])
    assert torch.all(zeroed > 0) and torch.all(zeroed <= 64)  # at most 8×8, clipped at the border
