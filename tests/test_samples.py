"""The shipped sample files are what their recipes in gandapt.samples.build make, and load as documented."""

import json

import numpy as np
import pytest

import gandapt
import gandapt.samples as samples
from gandapt.samples import data_path
from gandapt.samples.build import RECIPES, main

CHEAP = [n for n, r in RECIPES.items() if not r.trained]


def test_every_shipped_file_has_a_recipe():
    shipped = {p.name for p in samples.data_dir().iterdir()}
    assert shipped <= set(RECIPES)
    assert {"tiny_g32.pt", samples.CLIP, samples.BASE_MODEL, samples.ENCODER, samples.DOMAIN_ENCODER} <= shipped


@pytest.mark.parametrize("name", [n for n in CHEAP if n.endswith(".pt")])
def test_sample_model_matches_its_recipe(name, tmp_path):
    main([name, "--out", str(tmp_path)])
    rebuilt, shipped = gandapt.load(tmp_path / name), gandapt.load(data_path(name))
    assert rebuilt.fingerprint == shipped.fingerprint
    assert rebuilt.config == shipped.config


def test_sample_clip_matches_its_recipe(tmp_path):
    import cv2

    from gandapt.runtime.frames import read_video

    main([samples.CLIP, "--out", str(tmp_path)])
    rebuilt, shipped = read_video(tmp_path / samples.CLIP), read_video(samples.clip())
    assert len(rebuilt) == len(shipped) == 90 and shipped[0].shape == (144, 192, 3)
    # the same frames up to the codec: mean absolute difference of a few grey levels at most
    diff = np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(rebuilt, shipped)])
    assert diff < 2.0, diff
    assert cv2.__version__  # read through OpenCV, as the runtime does


def test_base_model_ships_with_d_and_provenance():
    ck = gandapt.load(samples.base_model())
    assert ck.D is not None and ck.config.img_resolution == 64
    extra = ck.extra
    assert extra["stored_dtype"] == "float16" and extra["fid"]["n_fake"] >= 1000
    assert extra["training_options"]["data"] and extra["images_seen"] > 100_000
    assert samples.base_model().stat().st_size < 10 * 2**20


def test_encoder_belongs_to_the_base_model_and_beats_the_baseline():
    enc = gandapt.load_encoder(samples.encoder())
    assert enc.base_fingerprint == gandapt.load(samples.base_model()).fingerprint
    m = enc.extra["metrics"]
    assert m["samples"]["w_nmse"] < 0.75 * m["samples"]["baseline_w_nmse"]
    for name in ("samples", "renders", "real_faces"):
        assert m[name]["psnr"] > m[name]["baseline_psnr"] + 1.0, (name, m[name])
    json.dumps(m)


def test_trained_recipes_need_a_work_folder(capsys):
    with pytest.raises(SystemExit):
        main([samples.BASE_MODEL])
    assert "--work" in capsys.readouterr().err


def test_unknown_sample_is_refused():
    with pytest.raises(gandapt.GandaptError, match="no sample file"):
        data_path("nope.pt")
    with pytest.raises(SystemExit):
        main(["nope.pt"])


def test_shipped_bundle_runs_every_domain_like_torch():
    """The exported bundle on onnxruntime matches the torch model with every shipped domain."""
    import torch

    from gandapt.pack import load_pack
    from gandapt.runtime.backends import open_backend
    from gandapt.runtime.bundle import open_bundle

    b = open_bundle(samples.bundle())
    pack = load_pack(samples.domain_pack())
    assert b.domain_names == list(pack.names) and len(pack) >= 4 and "sketch" in pack
    G = gandapt.load(samples.base_model()).G
    layout = G.synthesis.set_domain_stages(b.layout.stages)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5)), truncation_psi=0.7)
    with open_backend("onnxruntime", b, "synthesis") as synth:
        synth.bind("domain", b.vector(pack.names[0])[None])
        for name in pack.names:
            synth.update("domain", b.vector(name)[None])
            got = synth.infer({"ws": ws.detach().numpy()})["img"]
            with torch.no_grad():
                want = G.synthesis(ws, domain=torch.from_numpy(pack.vector(name, layout))[None], noise_mode="const")
            assert np.abs(got - want.numpy()).max() < 1e-3, name
