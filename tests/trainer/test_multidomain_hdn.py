"""HyperDomainNet (multi-domain) on the tiny model: exported domains reproduce the trained mapper, held-out
image sets and new prompts give domains without training, blending recomputes at the mixed conditioning."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import gandapt
from gandapt.errors import GandaptError
from gandapt.pack import DomainPack, load_pack
from gandapt.samples import data_path
from gandapt.trainer.multidomain.loop import train_multidomain
from gandapt.trainer.multidomain.model import (blend, blend_condition, domain_from_images, embed_images,
                                               load_hypermodel, vector_from_embedding)
from gandapt.trainer.multidomain.options import MultiDomainTrainOptions

MODEL = str(data_path("tiny_g32.pt"))
FAST = dict(method="hyperdomainnet", model=MODEL, embedder="disc", batch=2, steps=3, progress=False, hidden=32, n_source=8)


def _write_targets(root, transforms, n=2, seed=3):
    """Folders of the tiny model's samples through known transforms (one folder per domain)."""
    import cv2

    from gandapt.trainer.data.transforms import apply_transform

    G = gandapt.load(MODEL).G
    with torch.no_grad():
        x = G(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)))
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = {}
    for t in transforms:
        d = root / t
        d.mkdir()
        for i, a in enumerate(arr):
            cv2.imwrite(str(d / f"{i}.png"), apply_transform(t, a)[:, :, ::-1])
        out[t] = d
    return out


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    return _write_targets(tmp_path_factory.mktemp("hdn-targets"), ("sketch", "ink", "painting"))


@pytest.fixture(scope="module")
def run(targets, tmp_path_factory):
    out = tmp_path_factory.mktemp("hdn") / "run"
    path = train_multidomain(MultiDomainTrainOptions(out=str(out), targets=(str(targets["sketch"]), str(targets["ink"])),
                                                     **FAST))
    return out, path


def _ws(G, n=3, seed=9):
    return G.mapping(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)), truncation_psi=0.7)


def test_exported_domains_reproduce_the_trained_mapper(run):
    out, path = run
    m = load_hypermodel(path)
    assert m.method == "hyperdomainnet" and m.names == ("sketch", "ink") and m.layout.stages == ("in",)
    pack = load_pack(out / "domains.safetensors")
    assert pack.names == ("sketch", "ink") and pack.stages == ("in",) and pack.base_fingerprint == m.fingerprint
    assert bytes(gandapt.load(path).extra["domain_pack"].numpy()) == (out / "domains.safetensors").read_bytes()
    G = gandapt.load(MODEL).G
    full = G.synthesis.set_domain_stages()
    with torch.no_grad():
        ws = _ws(G)
        base = G.synthesis(ws)
        runtime = {n: G.synthesis(ws, domain=torch.from_numpy(pack.vector(n, full))[None]) for n in pack.names}
        G.synthesis.set_domain_stages(("in",))  # the trained module: mapper(t_k) in the method's layout
        for i, name in enumerate(m.names):
            trained = G.synthesis(ws, domain=m.net(m.conditions[i:i + 1]).expand(len(ws), -1))
            assert torch.allclose(runtime[name], trained, atol=1e-5)
            assert (runtime[name] - base).abs().max() > 1e-4
    assert (runtime["sketch"] - runtime["ink"]).abs().max() > 1e-5  # one mapper, two different domains
    dom = pack["sketch"]
    assert set(dom.tensors) == {n for n in full.names if n.startswith("in_scale.")}
    assert dom.meta["method"] == "hyperdomainnet" and dom.meta["steps"] == 3 and dom.meta["domains_in_model"] == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and {"direction", "tt", "norm"} <= set(log[0])
    assert (out / "samples.png").is_file()


def test_a_held_out_image_set_gives_a_domain_without_training(run, targets):
    _, path = run
    m = load_hypermodel(path)
    dom = domain_from_images(m, targets["painting"], "painting")
    e = embed_images(m, targets["painting"])
    assert e.shape == m.conditions.shape[1:]
    vec = m.full_layout.to_vector(dom.tensors)
    assert np.allclose(vec, vector_from_embedding(m, e), atol=1e-6)
    assert np.allclose(m.full_layout.convert(vec, m.layout), m.vectors(e[None])[0], atol=1e-6)
    trained = [m.to_full(m.vectors(m.conditions[i:i + 1]))[0] for i in range(2)]
    assert all(np.abs(vec - t).max() > 1e-6 for t in trained)
    DomainPack([dom], m.G.config, m.fingerprint)  # fits the base model's pack
    with pytest.raises(GandaptError, match="zero or not finite"):
        vector_from_embedding(m, np.zeros(m.conditions.shape[1]))


def test_blend_recomputes_at_the_interpolated_conditioning(run):
    _, path = run
    m = load_hypermodel(path)
    pack = load_pack(path.parent / "domains.safetensors")
    vs, vi = (pack.vector(n, m.full_layout) for n in ("sketch", "ink"))
    assert np.allclose(blend(m, {"sketch": 1.0}), vs, atol=1e-6)
    mixed = blend(m, {"sketch": 0.3, "ink": 0.7})
    cond = 0.3 * m.condition("sketch") + 0.7 * m.condition("ink")
    assert np.allclose(mixed, m.to_full(m.vectors(cond[None]))[0], atol=1e-6)
    assert torch.allclose(blend_condition(m, {"sketch": 3, "ink": 7}), cond, atol=1e-6)  # weights normalised
    assert np.abs(mixed - (0.3 * vs + 0.7 * vi)).max() > 1e-7  # the mapper is not linear
    only_in = blend(m, {"sketch": 0.5, "ink": 0.5}, layout=m.layout)
    assert only_in.shape == (m.layout.size,)
    with pytest.raises(GandaptError, match="unknown domain"):
        blend(m, {"nope": 1.0})
    with pytest.raises(GandaptError, match=">= 0"):
        blend(m, {"sketch": -1.0, "ink": 2.0})


def test_resume_continues_and_refuses_changes(targets, tmp_path):
    out = tmp_path / "run"
    opts = MultiDomainTrainOptions(out=str(out), targets=(str(targets["sketch"]), str(targets["ink"])),
                                   **{**FAST, "steps": 2})
    train_multidomain(opts)
    with pytest.raises(GandaptError, match="already holds a run"):
        train_multidomain(opts)
    train_multidomain(MultiDomainTrainOptions(**{**opts.to_dict(), "steps": 3}), resume=True)
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3
    with pytest.raises(GandaptError, match="different lr"):
        train_multidomain(MultiDomainTrainOptions(**{**opts.to_dict(), "steps": 4, "lr": 0.5}), resume=True)
    with pytest.raises(GandaptError, match="does not exist"):
        train_multidomain(MultiDomainTrainOptions(**{**opts.to_dict(), "out": str(tmp_path / "new")}), resume=True)


def test_bad_domain_lists(targets, tmp_path):
    s, i = str(targets["sketch"]), str(targets["ink"])
    with pytest.raises(GandaptError, match="duplicate domain"):
        MultiDomainTrainOptions(out="x", targets=(s, i, s + "/"), **FAST)
    with pytest.raises(GandaptError, match="needs at least 2.*domain-mod"):
        MultiDomainTrainOptions(out="x", targets=(s,), **FAST)
    with pytest.raises(GandaptError, match="duplicate domain names"):
        MultiDomainTrainOptions(out="x", targets=(s, i), names=("a", "a"), **FAST)
    with pytest.raises(GandaptError, match="--clip PATH"):
        MultiDomainTrainOptions(out="x", texts=("sketch", "ink"), **FAST)
    with pytest.raises(GandaptError, match="not both or neither"):
        MultiDomainTrainOptions(out="x", **FAST)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "0.png").write_bytes(b"not a png")
    with pytest.raises(GandaptError, match="domain 'bad': cannot read image"):
        train_multidomain(MultiDomainTrainOptions(out=str(tmp_path / "r"), targets=(s, str(bad)), **FAST))
    with pytest.raises(GandaptError, match="domain 'missing'"):
        train_multidomain(MultiDomainTrainOptions(out=str(tmp_path / "r"), targets=(s, str(tmp_path / "missing")),
                                                  **FAST))
    assert not (tmp_path / "r").exists()  # refused before any output


def test_cli_prints_one_line_errors(targets, tmp_path):
    from gandapt.trainer.multidomain.cli import hyperdomainnet

    res = CliRunner().invoke(hyperdomainnet, ["--model", MODEL, "--out", str(tmp_path / "r"),
                                              "--target", str(targets["sketch"])])
    assert res.exit_code == 1 and "needs at least 2" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(hyperdomainnet, ["--model", MODEL, "--out", str(tmp_path / "r"),
                                              "--text", "sketch", "--text", "ink"])
    assert res.exit_code == 1 and "--clip PATH" in res.output


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random-weight open_clip model registered from a JSON config, saved as a local checkpoint."""
    open_clip = pytest.importorskip("open_clip")
    d = tmp_path_factory.mktemp("clip")
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (d / "gandapt-tiny-clip-hdn.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(str(d / "gandapt-tiny-clip-hdn.json"))
    torch.manual_seed(0)
    torch.save(open_clip.create_model("gandapt-tiny-clip-hdn").state_dict(), d / "tiny_clip.pt")
    return d


def test_text_domains_through_a_tiny_clip(tiny_clip, tmp_path):
    out = tmp_path / "run"
    clip = dict(clip=str(tiny_clip / "tiny_clip.pt"), clip_arch="gandapt-tiny-clip-hdn",
                clip_config=str(tiny_clip / "gandapt-tiny-clip-hdn.json"))
    path = train_multidomain(MultiDomainTrainOptions(out=str(out), texts=("pencil sketch", "ink drawing"), **clip,
                                                     **{**FAST, "steps": 2}))
    m = load_hypermodel(path)
    assert m.names == ("pencil_sketch", "ink_drawing") and m.embedder["name"] == "clip"
    assert m.conditions.shape == (2, 32) and m.source is not None
    from gandapt.trainer.embedders import build_embedder

    emb = build_embedder("clip", checkpoint=clip["clip"], arch=clip["clip_arch"], config=clip["clip_config"])
    with torch.no_grad():
        e = torch.nn.functional.normalize(emb.encode_text(["watercolor painting"]), dim=-1)[0]  # an unseen prompt
    vec = vector_from_embedding(m, e)
    assert vec.shape == (m.full_layout.size,) and np.isfinite(vec).all()
    assert np.abs(vec - m.full_layout.identity()).max() > 0
    assert load_pack(out / "domains.safetensors").names == ("pencil_sketch", "ink_drawing")


@pytest.mark.parametrize("method", ["hyperdomainnet", "dynagan"])
def test_the_seed_fixes_the_trained_hypernetwork(method, targets, tmp_path):
    """--seed sets the hypernetwork's initial weights too, so equal seeds train to equal weights."""
    def trained(name, seed, draws):
        torch.rand(draws)  # whatever ran before (here: other draws from the global RNG) must not matter
        path = train_multidomain(MultiDomainTrainOptions(
            out=str(tmp_path / name), targets=(str(targets["sketch"]), str(targets["ink"])), seed=seed,
            **{**FAST, "method": method, "steps": 2}))
        return torch.load(path, weights_only=True)["extra"]["hypernet"]["state"]

    a, b, c = trained("a", 0, 1), trained("b", 0, 7), trained("c", 1, 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_identity_loss_is_an_option_for_the_mapper_too(targets, tmp_path, tiny_encoder_files):
    """--id-encoder adds DynaGAN's identity term to HyperDomainNet (not the paper's; off without it), and the
    term's gradient reaches the mapper: two runs that differ only in it train different mappers."""
    folders = (str(targets["sketch"]), str(targets["ink"]))
    out = tmp_path / "id"
    train_multidomain(MultiDomainTrainOptions(out=str(out), targets=folders, id_encoder=str(tiny_encoder_files[1]),
                                              **{**FAST, "lr": 0.01}))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(row["id"] >= 0 for row in log) and log[-1]["id"] > 0
    plain = tmp_path / "plain"
    train_multidomain(MultiDomainTrainOptions(out=str(plain), targets=folders, **{**FAST, "lr": 0.01}))
    assert "id" not in json.loads((plain / "log.jsonl").read_text().splitlines()[0])
    with_id = torch.load(out / "checkpoint.pt", weights_only=True)["net"]
    without = torch.load(plain / "checkpoint.pt", weights_only=True)["net"]
    assert any(not torch.equal(with_id[k], without[k]) for k in with_id)
