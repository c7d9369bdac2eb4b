"""Adaptation losses: values at known configurations and their gradients."""

import pytest
import torch
import torch.nn.functional as F

from gandapt.errors import GandaptError
from gandapt.trainer.losses.directional import (directional_loss, image_direction, indomain_angle_loss,
                                                quality_diversity)
from gandapt.trainer.losses.mindthegap import across_loss, ref_loss, rec_loss, within_loss
from gandapt.trainer.losses.regularizers import l2_to_identity


class Linear:
    """A fixed linear 'embedder' on flattened images, enough to check the direction algebra."""

    name, dim = "lin", 4

    def __init__(self):
        self.W = torch.randn(4, 3 * 8 * 8, generator=torch.Generator().manual_seed(0))

    def encode_image(self, img):
        return img.flatten(1) @ self.W.T


def test_directional_loss_is_zero_along_the_direction_and_two_against_it():
    d = F.normalize(torch.tensor([1.0, 0.0, 0.0]), dim=0)
    frozen = torch.tensor([[0.0, 1.0, 0.0]])
    along = F.normalize(torch.tensor([[0.1, 1.0, 0.0]]), dim=-1)
    against = F.normalize(torch.tensor([[-0.1, 1.0, 0.0]]), dim=-1)
    assert directional_loss(along, frozen, d) < 0.01
    assert directional_loss(against, frozen, d) > 1.99


def test_image_direction_points_from_source_to_target():
    emb = Linear()
    g = torch.Generator().manual_seed(1)
    src = torch.randn(5, 3, 8, 8, generator=g)
    tgt = src + 0.5
    d = image_direction(emb, src, tgt)
    assert d.norm().item() == pytest.approx(1.0, abs=1e-5)
    # moving a source image towards the target set lowers the loss
    e0 = emb.encode_image(src[:1])
    assert directional_loss(emb.encode_image(src[:1] + 0.5), e0, d) < directional_loss(emb.encode_image(src[:1] - 0.5), e0, d)
    with pytest.raises(GandaptError, match="exactly like"):
        image_direction(emb, src, src)


def test_indomain_angle_is_zero_for_a_rotation_and_has_gradients():
    e = torch.randn(4, 6)
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    assert indomain_angle_loss(e @ q, e) < 1e-10  # pairwise cosines unchanged
    a = torch.randn(4, 6, requires_grad=True)
    indomain_angle_loss(a, e).backward()
    assert a.grad.abs().sum() > 0
    with pytest.raises(GandaptError, match="at least 2"):
        indomain_angle_loss(e[:1], e[:1])


def test_quality_and_diversity():
    t = torch.tensor([1.0, 0.0])
    q, d = quality_diversity(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), t)
    assert q == pytest.approx(0.5) and d == pytest.approx(1.0)


def test_mindthegap_terms():
    e_ref, e_ref_frozen = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    frozen = torch.tensor([[0.0, 1.0, 0.0]])
    assert across_loss(torch.tensor([[1.0, 0.0, 0.0]]), frozen, e_ref, e_ref_frozen) < 1e-6
    assert within_loss(torch.tensor([[1.0, 0.0, 0.0]]), frozen, e_ref, e_ref_frozen) > 0.5
    assert ref_loss(e_ref[None], e_ref) < 1e-6
    assert rec_loss(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)) == pytest.approx(1.0)
    assert l2_to_identity(torch.tensor([2.0, 1.0]), torch.ones(2)) == pytest.approx(0.5)


def test_directional_gradient_is_bounded_where_training_starts():
    """At G_d = G the embedding change is exactly 0; the gradient must stay O(1/DELTA_EPS), not 1e7+
    (which would swamp Adam's second moment and freeze every later step)."""
    from gandapt.trainer.losses.directional import DELTA_EPS

    torch.manual_seed(0)
    e = torch.randn(4, 32)
    direction = F.normalize(torch.randn(32), dim=0)
    adapted = e.clone().requires_grad_(True)
    directional_loss(adapted, e, direction).backward()
    assert 0 < adapted.grad.norm() < 10 / DELTA_EPS
    # away from the start the loss is the plain cosine
    moved = e + 0.5 * direction
    cos = F.cosine_similarity(F.normalize(moved, dim=-1) - F.normalize(e, dim=-1), direction[None], dim=-1)
    assert torch.allclose(directional_loss(moved, e, direction), (1 - cos).mean(), atol=1e-6)
