"""A tiny bundle (32 px model, two domains, an encoder) shared by the runtime tests."""

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """``gandapt-export`` of samples/data/tiny_g32.pt with domains ``warm`` (StyleSpace shifts) and
    ``bold`` (domain-modulation scales) plus a random-weight encoder; built once per session."""
    torch = pytest.importorskip("torch")
    import gandapt
    from gandapt.checkpoint import save_encoder
    from gandapt.encoder import Encoder, EncoderConfig
    from gandapt.export.bundle import export_bundle
    from gandapt.pack import Domain, DomainPack, save_pack
    from gandapt.samples import data_path

    root = tmp_path_factory.mktemp("runtime_bundle")
    ck = gandapt.load(data_path("tiny_g32.pt"))
    layout = ck.G.layout
    rng = np.random.default_rng(0)
    warm = {n: 0.8 * rng.standard_normal(layout.entry(n).shape).astype(np.float32)
            for n in layout.names if n.startswith("s_shift.")}
    bold = {n: (1 + 0.5 * rng.standard_normal(layout.entry(n).shape)).astype(np.float32)
            for n in layout.names if n.startswith("in_scale.")}
    pack = DomainPack([Domain("warm", warm, {"method": "stylespace"}), Domain("bold", bold, {"method": "domain-mod"})],
                      ck.config, ck.fingerprint)
    save_pack(pack, root / "pack.safetensors")
    torch.manual_seed(0)
    E = Encoder(EncoderConfig.for_generator(ck.config, head_dim=32, head_channels=8)).eval()
    save_encoder(root / "encoder.pt", E, ck.fingerprint)
    return export_bundle(data_path("tiny_g32.pt"), root / "bundle", domains=root / "pack.safetensors",
                         encoder=root / "encoder.pt", progress=False)
