"""DynaGAN on the tiny model: exact rank-1 + out-scale tensors reproduce the trained hypernetwork, the
contrastive-adaptation loss, the identity-loss decision, blending in υ, NaN stop."""

import json

import numpy as np
import pytest
import torch

import gandapt
from gandapt.errors import GandaptError
from gandapt.pack import load_pack
from gandapt.samples import data_path
from gandapt.trainer.multidomain.hypernets import DynaGANHyperNet
from gandapt.trainer.multidomain.loop import train_multidomain
from gandapt.trainer.multidomain.model import blend, domain_from_images, load_hypermodel
from gandapt.trainer.multidomain.objectives import DynaGANObjective
from gandapt.trainer.multidomain.options import MultiDomainTrainOptions

MODEL = str(data_path("tiny_g32.pt"))
FAST = dict(method="dynagan", model=MODEL, embedder="disc", batch=3, steps=3, progress=False, hidden=16, n_source=8)


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    import cv2

    from gandapt.trainer.data.transforms import apply_transform

    root = tmp_path_factory.mktemp("dyna-targets")
    G = gandapt.load(MODEL).G
    with torch.no_grad():
        x = G(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5)))
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for t in ("sketch", "ink", "pixel"):
        (root / t).mkdir()
        for i, a in enumerate(arr):
            cv2.imwrite(str(root / t / f"{i}.png"), apply_transform(t, a)[:, :, ::-1])
        out.append(str(root / t))
    return tuple(out)


@pytest.fixture(scope="module")
def run(targets, tmp_path_factory):
    out = tmp_path_factory.mktemp("dyna") / "run"
    return out, train_multidomain(MultiDomainTrainOptions(out=str(out), targets=targets, **FAST))


def test_exported_rank1_domains_reproduce_the_trained_hypernet(run):
    out, path = run
    m = load_hypermodel(path)
    assert m.method == "dynagan" and m.names == ("sketch", "ink", "pixel")
    assert m.layout.stages == ("out", "rank1") and torch.equal(m.conditions, torch.eye(3))
    pack = load_pack(out / "domains.safetensors")
    assert pack.stages == ("out", "rank1") and pack.base_fingerprint == m.fingerprint
    G = gandapt.load(MODEL).G
    full = G.synthesis.set_domain_stages()
    ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(9)), truncation_psi=0.7)
    with torch.no_grad():
        base = G.synthesis(ws)
        for c, name in enumerate(m.names):
            runtime = G.synthesis(ws, domain=torch.from_numpy(pack.vector(name, full))[None])
            # the stored tensors are the hypernet's factors themselves
            f = m.net.factors(m.net.latent(torch.eye(3)[c:c + 1]))
            t = pack[name].tensors
            for layer, fl in f.items():
                assert np.allclose(t[f"r1_out.{layer}"], fl["a_out"][0].numpy(), atol=1e-6)
                assert np.allclose(t[f"r1_in.{layer}"], fl["a_in"][0].numpy(), atol=1e-6)
                assert np.allclose(t[f"r1_k.{layer}"], fl["kappa"][0].numpy(), atol=1e-6)
                assert np.allclose(t[f"out_scale.{layer}"], fl["delta"][0].numpy(), atol=1e-6)
            # the trained module: a generator whose conv kernels are W + a_out ⊗ a_in ⊗ κ, with δ on the outputs
            trained = _dynagan_reference(G, ws, f)
            assert torch.allclose(runtime, trained, atol=1e-4), (runtime - trained).abs().max()
            assert (runtime - base).abs().max() > 1e-4
            assert any(np.abs(v).max() > 0 for k, v in t.items() if k.startswith("r1_k."))  # κ trained off zero
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and {"direction", "contrast"} <= set(log[0]) and "id" not in log[0]


def _dynagan_reference(G, ws, factors):
    """DynaGAN's own forward (methods.md §4.1): w' = c·(W + a_out ⊗ a_in ⊗ κ)·s, demodulated, × δ along
    C_out — applied by patching each conv's kernel and its out-scale through the reference modconv form."""

    layers = {s.name: layer for s, layer in zip(G.config.layers(), G.synthesis.layers)}
    saved = {}
    try:
        G.synthesis.set_domain_stages(("out",))
        layout = G.synthesis.layout
        vec = layout.identity()
        for name, f in factors.items():
            layer = layers[name]
            saved[name] = layer.weight.data.clone()
            dw = f["a_out"][0][:, None, None, None] * f["a_in"][0][None, :, None, None] * f["kappa"][0][None, None]
            layer.weight.data += dw
            vec[layout.slice(f"out_scale.{name}")] = f["delta"][0].numpy()
        G.synthesis.set_modconv_form("reference")
        with torch.no_grad():
            return G.synthesis(ws, domain=torch.from_numpy(vec)[None])
    finally:
        for name, w in saved.items():
            layers[name].weight.data.copy_(w)
        G.synthesis.set_modconv_form("decomposed")
        G.synthesis.set_domain_stages()


def test_blend_interpolates_upsilon_and_recomputes(run):
    _, path = run
    m = load_hypermodel(path)
    pack = load_pack(path.parent / "domains.safetensors")
    va, vb = (pack.vector(n, m.full_layout) for n in ("sketch", "ink"))
    assert np.allclose(blend(m, {"ink": 2.0}), vb, atol=1e-6)
    mixed = blend(m, {"sketch": 0.25, "ink": 0.75})
    with torch.no_grad():
        ups = 0.25 * m.net.latent(torch.eye(3)[0:1]) + 0.75 * m.net.latent(torch.eye(3)[1:2])
    assert np.allclose(mixed, m.to_full(m.latent_vectors(ups))[0], atol=1e-6)
    # the factors mix linearly, their product (the kernel residual) does not: ΔW ≠ 0.25 ΔW_a + 0.75 ΔW_b
    layer = m.G.config.layers()[0].name
    fl = {k: m.full_layout.slice(f"{k}.{layer}") for k in ("r1_out", "r1_in", "r1_k")}

    def dw(v):
        return np.einsum("o,i,xy->oixy", v[fl["r1_out"]], v[fl["r1_in"]], v[fl["r1_k"]].reshape(3, 3))
    assert np.abs(dw(mixed) - (0.25 * dw(va) + 0.75 * dw(vb))).max() > 0
    with pytest.raises(GandaptError, match="cannot make a domain from new images"):
        domain_from_images(m, torch.zeros(1, 3, 32, 32), "x")


def _objective(weights, identity=None):
    G = gandapt.load(MODEL).G
    layout = G.synthesis.set_domain_stages(("out", "rank1"))
    net = DynaGANHyperNet(2, layout, hidden=8)
    with torch.no_grad():  # move κ off zero so every factor has a gradient
        for h in net.heads.values():
            h["kappa"].bias.fill_(0.1)

    class Emb(torch.nn.Module):  # a fixed differentiable image tower
        def encode_image(self, x):
            return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)

    refs = torch.tensor([[1.0, 0, 0, 0, 0, 1], [0, 1.0, 0, 1, 0, 0]])
    augs = refs[:, None].repeat(1, 4, 1) + 0.1
    return G, DynaGANObjective(net, Emb(), refs, augs, torch.zeros(6), weights, identity=identity)


def test_contrastive_loss_prefers_the_own_reference():
    _, obj = _objective({"direction": 1.0, "contrast": 1.0})
    labels = torch.tensor([0, 1])
    right = obj.contrastive_loss(obj.refs.clone(), labels)
    wrong = obj.contrastive_loss(obj.refs.flip(0), labels)
    assert right < wrong
    # an own augmented copy is never a negative: the same embedding scores the same whatever its own augs are
    obj2 = DynaGANObjective(obj.net, obj.embedder, obj.refs, obj.augs.clone(), torch.zeros(6), {})
    obj2.augs[0] = obj2.refs[0]
    assert torch.allclose(obj2.contrastive_loss(obj.refs[:1], labels[:1]), obj.contrastive_loss(obj.refs[:1], labels[:1]))


def test_direction_space_contrast_scores_the_move_not_the_position(targets, tmp_path):
    _, emb_obj = _objective({"direction": 1.0, "contrast": 1.0})
    dir_obj = DynaGANObjective(emb_obj.net, emb_obj.embedder, emb_obj.refs, emb_obj.augs, torch.zeros(6), {},
                               contrast_space="direction")
    n = torch.nn.functional.normalize
    label = torch.tensor([0])
    frozen = emb_obj.refs[1:2].clone()                     # G(w) already looks like domain 1's reference
    adapted = n(frozen, dim=-1) + 0.3 * n(emb_obj.refs[:1], dim=-1)  # and moved a little towards domain 0
    by_move = dir_obj.contrastive_loss(adapted, label, frozen)
    by_position = emb_obj.contrastive_loss(adapted, label)
    assert by_move < 0.5 * float(torch.log(torch.tensor(2.0)))   # the move points along domain 0: right class
    assert by_position > float(torch.log(torch.tensor(2.0)))     # the position is still domain 1's: wrong class
    with pytest.raises(GandaptError, match="--contrast-space must be one of embedding, direction, got 'x'"):
        MultiDomainTrainOptions(out="x", targets=targets, contrast_space="x", **FAST)
    with pytest.raises(GandaptError, match="--contrast-space applies to dynagan's contrastive loss"):
        MultiDomainTrainOptions(out="x", targets=targets, contrast_space="direction",
                                **{**FAST, "method": "hyperdomainnet"})
    out = tmp_path / "dir"
    train_multidomain(MultiDomainTrainOptions(out=str(out), targets=targets, contrast_space="direction", **FAST))
    saved = json.loads((out / "training_options.json").read_text())
    assert saved["contrast_space"] == "direction"


def test_identity_term_off_by_default_and_fixed_when_on(tiny_encoder_files):
    from gandapt.trainer.losses.identity import EncoderIdentity

    G, obj = _objective({"direction": 1.0, "contrast": 1.0})
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)))
    assert "id" not in obj.losses(G, ws, torch.Generator().manual_seed(0))  # as released: no identity gradient
    with pytest.raises(GandaptError, match="--id-encoder"):
        _objective({"direction": 1.0, "id": 3.0})  # a weight without an identity network
    G, obj = _objective({"direction": 0.0, "contrast": 0.0, "id": 3.0}, EncoderIdentity(tiny_encoder_files[0]))
    loss = obj.losses(G, ws, torch.Generator().manual_seed(0))["id"]
    assert float(loss.detach()) > 0
    loss.backward()
    grads = [p.grad for p in obj.net.parameters() if p.grad is not None]
    assert grads and max(float(g.abs().max()) for g in grads) > 0  # the fixed term reaches the hypernetwork
    assert all(p.grad is None for p in obj.identity.parameters())  # the identity network stays frozen


def test_identity_options_and_run(targets, tmp_path, tiny_encoder_files):
    """--id-encoder turns the identity term on at the paper's weight 3; without it the weight resolves to 0,
    an explicit --lambda-id without it and a foreign encoder are refused before the run folder exists."""
    _, good, foreign = tiny_encoder_files
    assert MultiDomainTrainOptions(out="x", targets=targets, **FAST).resolved().lambda_id == 0.0
    assert MultiDomainTrainOptions(out="x", targets=targets, id_encoder=str(good), **FAST).resolved().lambda_id == 3.0
    with pytest.raises(GandaptError, match="--lambda-id 2.0 needs an identity network"):
        MultiDomainTrainOptions(out="x", targets=targets, lambda_id=2.0, **FAST)
    with pytest.raises(GandaptError, match="--id-encoder .* inverts into model"):
        train_multidomain(MultiDomainTrainOptions(out=str(tmp_path / "bad"), targets=targets, id_encoder=str(foreign),
                                                  **FAST))
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "run"
    train_multidomain(MultiDomainTrainOptions(out=str(out), targets=targets, id_encoder=str(good), **FAST))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all("id" in row for row in log) and log[-1]["id"] > 0
    saved = json.loads((out / "training_options.json").read_text())
    assert saved["lambda_id"] == 3.0 and saved["id_encoder"] == str(good)


def test_single_domain_and_nan_stop(targets, tmp_path):
    with pytest.raises(GandaptError, match="needs at least 2"):
        MultiDomainTrainOptions(out="x", targets=targets[:1], **FAST)
    with pytest.raises(GandaptError, match="dynagan adapts to target images"):
        MultiDomainTrainOptions(out="x", texts=("a", "b"), clip="c.pt", **FAST)
    out = tmp_path / "run"
    opts = MultiDomainTrainOptions(out=str(out), targets=targets[:2], **{**FAST, "steps": 1})
    train_multidomain(opts)
    before = torch.load(out / "checkpoint.pt", weights_only=True)
    real = DynaGANHyperNet.from_latent
    DynaGANHyperNet.from_latent = lambda self, u, alpha=1.0, beta=1.0: real(self, u) * float("nan")
    try:
        with pytest.raises(GandaptError, match="loss became nan"):
            train_multidomain(MultiDomainTrainOptions(**{**opts.to_dict(), "steps": 3}), resume=True)
    finally:
        DynaGANHyperNet.from_latent = real
    after = torch.load(out / "checkpoint.pt", weights_only=True)
    assert after["step"] == 1 and all(torch.equal(after["net"][k], v) for k, v in before["net"].items())
    assert not (out / "model.pt").exists() or gandapt.load(out / "model.pt").extra["steps"] == 1


def test_encoder_inversions_are_each_domains_source(targets, tmp_path, tiny_encoder_files):
    """--encoder: domain c's direction is n(t_c − mean E(G(E(x)))) over its own references."""
    from gandapt.trainer.adapters.targets import load_targets
    from gandapt.trainer.embedders import build_embedder
    from gandapt.trainer.losses.directional import mean_embedding
    from gandapt.trainer.multidomain import loop

    ck = gandapt.load(MODEL)
    E, good, bad = tiny_encoder_files
    opts = MultiDomainTrainOptions(out=str(tmp_path / "run"), targets=targets, encoder=str(good), **FAST).resolved()
    G = ck.G.eval().requires_grad_(False)
    layout = G.synthesis.set_domain_stages(("out", "rank1"))
    emb = build_embedder("disc", D=ck.D)
    sets = [load_targets(t, G.img_resolution) for t in targets]
    mapped = []  # the random-sample source goes through the mapping network; the inversions do not
    hook = G.mapping.register_forward_pre_hook(lambda module, inputs: mapped.append(inputs[0].shape[0]))
    obj = loop.build_objective(opts, G, layout, emb, sets, "cpu", ck.fingerprint)[0]
    hook.remove()
    assert mapped == []  # no n_source samples drawn only to be discarded
    with torch.no_grad():
        for c, t in enumerate(sets):
            src = mean_embedding(emb, G.synthesis(E(t), noise_mode="const"))
            want = torch.nn.functional.normalize(mean_embedding(emb, t) - src, dim=0)
            assert torch.allclose(obj.directions[c], want, atol=1e-5)
    plain = loop.build_objective(MultiDomainTrainOptions(out="x", targets=targets, **FAST).resolved(), G, layout, emb,
                                 sets, "cpu", ck.fingerprint)[0]
    assert not torch.allclose(plain.directions, obj.directions, atol=1e-3)  # the random-sample source differs
    with pytest.raises(GandaptError, match="--encoder applies to dynagan"):
        MultiDomainTrainOptions(out="x", targets=targets, encoder=str(good), **{**FAST, "method": "hyperdomainnet"})
    out = tmp_path / "foreign"
    with pytest.raises(GandaptError, match="not this base model"):
        train_multidomain(MultiDomainTrainOptions(out=str(out), targets=targets, encoder=str(bad), **FAST))
    assert not out.exists()  # refused before the run folder was made
