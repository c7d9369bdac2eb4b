"""gandapt-run --domain-image: a DEGAN domain encoder's ONNX makes new domains at run time."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gandapt.errors import GandaptError

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """(torch DomainEncoderFile, its exported .onnx, a 32-px reference PNG) for samples/data/tiny_g32.pt."""
    import cv2

    import gandapt
    from gandapt.samples import data_path
    from gandapt.trainer.degan.export import export_domain_encoder
    from gandapt.trainer.degan.file import load_domain_encoder, save_domain_encoder
    from gandapt.trainer.degan.model import DomainEncoder, DomainEncoderConfig

    root = tmp_path_factory.mktemp("domain_encoder")
    ck = gandapt.load(data_path("tiny_g32.pt"))
    torch.manual_seed(0)
    E = DomainEncoder(DomainEncoderConfig.for_generator(ck.config, channels=(8, 16), hidden=16)).eval()
    with torch.no_grad():  # the heads start at zero (identity); give them weights so domains differ
        for p in E.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = save_domain_encoder(root / "enc.pt", E, ck.fingerprint, ck.config)
    enc = load_domain_encoder(path)
    onnx_path = root / "enc.onnx"
    export_domain_encoder(enc, onnx_path)
    img = (np.random.default_rng(3).uniform(0, 255, (80, 100, 3))).astype(np.uint8)  # not square, not 32 px
    cv2.imwrite(str(root / "ref.png"), img[:, :, ::-1])
    return enc, onnx_path, root / "ref.png"


def test_image_domain_matches_the_torch_encoder(tiny_bundle, encoder):
    from gandapt.runtime.bundle import open_bundle
    from gandapt.runtime.domain_image import add_image_domains
    from gandapt.trainer.degan.infer import domain_from_image

    enc, onnx_path, ref = encoder
    bundle = open_bundle(tiny_bundle)
    before = list(bundle.vectors)
    assert add_image_domains(bundle, onnx_path, [str(ref), f"second={ref}"]) == ["ref", "second"]
    assert list(bundle.vectors) == before + ["ref", "second"]
    want = domain_from_image(enc, str(ref), layout=bundle.layout)      # the trainer's torch path, same crop/resize
    assert np.abs(bundle.vectors["ref"] - want).max() < 1e-4
    assert np.abs(bundle.vectors["ref"] - bundle.identity()).max() > 1e-3  # a real domain, not identity
    # only the s stage moves: the bundle's other stages stay identity
    tensors = bundle.layout.from_vector(bundle.vectors["ref"], only_changed=True)
    assert tensors and all(name.startswith("s_shift.") for name in tensors)


def test_run_starts_on_the_image_domain(tiny_bundle, encoder, tmp_path):
    from gandapt.runtime.pipeline import RunOptions, run

    _, onnx_path, ref = encoder
    frames = {}
    image = {"domain_images": (f"mine={ref}",), "domain_encoder": str(onnx_path)}
    for name, extra in (("image", image), ("chosen", {**image, "domain": "mine"}), ("other", {**image, "domain": "warm"})):
        got = []
        run(RunOptions(bundle=str(tiny_bundle), source="latent", frames=2, output=str(tmp_path / name), overlay=False,
                       **extra),
            on_frame=got.append)
        frames[name] = got
    assert len(frames["image"]) == 2
    assert all(np.array_equal(a, b) for a, b in zip(frames["image"], frames["chosen"]))  # started on the new domain
    assert np.abs(frames["image"][0].astype(int) - frames["other"][0]).max() > 0


def test_bad_domain_image_input(tiny_bundle, encoder, tmp_path):
    import onnx

    from gandapt.runtime.bundle import open_bundle
    from gandapt.runtime.domain_image import META_KEY, add_image_domains
    from gandapt.runtime.pipeline import RunOptions, run

    _, onnx_path, ref = encoder
    b = open_bundle(tiny_bundle)
    with pytest.raises(GandaptError, match="already has a domain named 'warm'; name the image"):
        add_image_domains(b, onnx_path, [f"warm={ref}"])
    with pytest.raises(GandaptError, match="two --domain-image entries are named 'ref'"):
        add_image_domains(b, onnx_path, [str(ref), f"ref={ref}"])
    with pytest.raises(GandaptError, match="missing.png not found"):
        add_image_domains(b, onnx_path, [str(tmp_path / "missing.png")])
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(GandaptError, match="not an image that can be read"):
        add_image_domains(b, onnx_path, [str(tmp_path / "junk.png")])
    with pytest.raises(GandaptError, match="enc2.onnx not found; export one with gandapt-train degan"):
        add_image_domains(b, tmp_path / "enc2.onnx", [str(ref)])
    plain = tiny_bundle / b.manifest.graphs["mapping"]["file"]       # an ONNX file, but no domain encoder
    with pytest.raises(GandaptError, match="has no gandapt domain-encoder record"):
        add_image_domains(b, plain, [str(ref)])
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    with pytest.raises(GandaptError, match="is not a readable ONNX model"):
        add_image_domains(b, tmp_path / "bad.onnx", [str(ref)])
    model = onnx.load(str(onnx_path))                                 # an encoder for another base model
    meta = next(p for p in model.metadata_props if p.key == META_KEY)
    meta.value = json.dumps({**json.loads(meta.value), "base_fingerprint": "g2:000000000000000000000000"})
    onnx.save(model, str(tmp_path / "other.onnx"))
    with pytest.raises(GandaptError, match="base model g2:000000000000000000000000, but the bundle runs"):
        add_image_domains(b, tmp_path / "other.onnx", [str(ref)])
    meta.value = "{not json"
    onnx.save(model, str(tmp_path / "damaged.onnx"))
    with pytest.raises(GandaptError, match="has a damaged gandapt record; re-export it"):
        add_image_domains(b, tmp_path / "damaged.onnx", [str(ref)])
    assert list(b.vectors) == ["warm", "bold"]                        # nothing added by a failed call
    common = dict(bundle=str(tiny_bundle), source="latent", frames=1)
    with pytest.raises(GandaptError, match="--domain-image needs --domain-encoder"):
        run(RunOptions(domain_images=(str(ref),), **common))
    with pytest.raises(GandaptError, match="give at least one --domain-image"):
        run(RunOptions(domain_encoder=str(onnx_path), **common))
    with pytest.raises(GandaptError, match="either --domain .* or --blend"):
        run(RunOptions(domain="warm", blend="warm:0.5", **common))


def test_a_bundle_without_the_s_stage_is_refused(tmp_path, encoder):
    import gandapt
    from gandapt.export.bundle import export_bundle
    from gandapt.pack import Domain, DomainPack, save_pack
    from gandapt.runtime.bundle import open_bundle
    from gandapt.runtime.domain_image import add_image_domains
    from gandapt.samples import data_path

    _, onnx_path, ref = encoder
    ck = gandapt.load(data_path("tiny_g32.pt"))
    scales = {n: np.full(ck.G.layout.entry(n).shape, 1.2, np.float32) for n in ck.G.layout.names
              if n.startswith("in_scale.")}
    save_pack(DomainPack([Domain("bold", scales)], ck.config, ck.fingerprint), tmp_path / "p.safetensors")
    bundle = export_bundle(data_path("tiny_g32.pt"), tmp_path / "b", domains=tmp_path / "p.safetensors", progress=False)
    with pytest.raises(GandaptError, match="stages in; a domain encoder makes StyleSpace"):
        add_image_domains(open_bundle(bundle), onnx_path, [str(ref)])


def test_cli_domain_image(tiny_bundle, encoder, tmp_path):
    from gandapt.runtime.cli import main

    _, onnx_path, ref = encoder
    res = CliRunner().invoke(main, [str(tiny_bundle), "--source", "latent", "--frames", "2", "--output",
                                    str(tmp_path / "o"), "--domain-encoder", str(onnx_path),
                                    "--domain-image", f"mine={ref}", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["frames_out"] == 2
    res = CliRunner().invoke(main, [str(tiny_bundle), "--source", "latent", "--frames", "1",
                                    "--domain-image", str(ref)])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert res.output.startswith("Error: --domain-image needs --domain-encoder FILE.onnx for this bundle's base model g")
    assert "the shipped encoder only makes domains for the shipped avatar model" in res.output
    assert Path(tmp_path / "o").is_dir()


def test_without_a_shipped_encoder_domain_encoder_is_required(tiny_bundle, tmp_path, monkeypatch):
    import gandapt.samples
    from gandapt.runtime.bundle import open_bundle
    from gandapt.runtime.domain_image import add_image_domains

    monkeypatch.setattr(gandapt.samples, "data_dir", lambda: tmp_path)  # an installation without the file
    with pytest.raises(GandaptError, match="needs --domain-encoder FILE.onnx .*this installation has no shipped one"):
        add_image_domains(open_bundle(tiny_bundle), None, [str(tmp_path / "ref.png")])


def test_shipped_encoder_fits_the_shipped_bundle(tmp_path):
    """The README's path: gandapt-run --source sample --domain-image REF.png, no --domain-encoder."""
    import cv2

    import gandapt
    from gandapt import samples
    from gandapt.runtime.bundle import open_bundle
    from gandapt.runtime.domain_image import META_KEY
    from gandapt.runtime.pipeline import RunOptions, run
    from gandapt.trainer.data.transforms import apply_transform

    import onnx

    bundle = open_bundle(samples.bundle())
    meta = json.loads(next(p.value for p in onnx.load(str(samples.domain_encoder())).metadata_props if p.key == META_KEY))
    # the shipped files were made for one base model: a rebuilt base model needs a rebuilt encoder
    ck = gandapt.load(samples.base_model(), with_d=False)
    assert meta["base_fingerprint"] == bundle.manifest.source["fingerprint"] == ck.fingerprint
    assert meta["provenance"]["recipe"].startswith("python -m gandapt.samples.build avatars64_domain_encoder.onnx")
    with torch.no_grad():
        img = ck.G(torch.randn(1, ck.G.z_dim, generator=torch.Generator().manual_seed(1)), truncation_psi=0.7)
    rgb = ((img[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    cv2.imwrite(str(tmp_path / "ref.png"), apply_transform("sketch", rgb)[:, :, ::-1])
    frames = {}
    for name, extra in (("image", {"domain_images": (f"mine={tmp_path / 'ref.png'}",)}), ("base", {"domain": "base"})):
        got = []
        run(RunOptions(bundle=str(samples.bundle()), source="sample", frames=1, output=str(tmp_path / name),
                       overlay=False, **extra),
            on_frame=got.append)
        frames[name] = got[0]
    assert np.abs(frames["image"].astype(int) - frames["base"]).mean() > 1  # the new domain changes the picture
