"""gandapt-train eval: paired error, precision/recall and the domain loading rules."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gandapt
from gandapt.errors import GandaptError
from gandapt.samples import data_path
from gandapt.trainer.adapters.evaluate import evaluate_domain, load_domain, paired_error, precision_recall
from gandapt.trainer.adapters.loop import train_adapter
from gandapt.trainer.adapters.options import AdapterTrainOptions

MODEL = str(data_path("tiny_g32.pt"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import cv2

    from gandapt.trainer.data.transforms import apply_transform

    root = tmp_path_factory.mktemp("eval")
    tgt = root / "sketch"
    tgt.mkdir()
    G = gandapt.load(MODEL).G
    with torch.no_grad():
        x = G(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(3)), truncation_psi=0.7)
    for i, a in enumerate(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()):
        cv2.imwrite(str(tgt / f"{i}.png"), apply_transform("sketch", a)[:, :, ::-1])
    common = dict(model=MODEL, target=str(tgt), embedder="disc", batch=2, progress=False)
    dm = train_adapter(AdapterTrainOptions(method="domain-mod", out=str(root / "dm"), steps=30, lr=0.05, **common))
    ft = train_adapter(AdapterTrainOptions(method="finetune", out=str(root / "ft"), steps=2, **common))
    return {"target": tgt, "dm": dm, "ft": ft}


def test_paired_error_of_the_identity_is_the_unadapted_error():
    G_d, G, _ = load_domain(MODEL, base=MODEL)
    r = paired_error(G_d, G, "sketch", n=4)
    assert r["paired_l1"] == pytest.approx(r["unadapted_l1"]) and r["paired_l1"] > 0.05


def test_a_trained_domain_moves_towards_the_transform(runs):
    r = evaluate_domain(str(runs["dm"]), transform="sketch", paired_n=16)
    assert r["paired_l1"] < r["unadapted_l1"] and "domain-mod" in r["domain"]


def test_finetune_model_compares_with_its_recorded_base(runs):
    G_d, G, what = load_domain(str(runs["ft"]))
    assert what == "full fine-tune"
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        assert not torch.allclose(G_d(z), G(z))


def test_fid_pr_and_quality_diversity_against_a_target_set(runs):
    r = evaluate_domain(str(runs["dm"]), target_set=str(runs["target"]), n_fid=8, embedder="vgg")
    for key in ("fid", "kid", "precision", "recall", "quality", "diversity"):
        assert np.isfinite(r[key]), key
    assert r["n_fake"] == 8 and r["n_real"] == 8 and 0 <= r["precision"] <= 1


def test_precision_recall_on_known_sets():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 4)).astype(np.float32)
    assert precision_recall(a, a)["precision"] == 1.0
    far = a + 100
    pr = precision_recall(far, a)
    assert pr["precision"] == 0.0 and pr["recall"] == 0.0
    with pytest.raises(GandaptError, match="at least 4 images per set .* got 200 generated and 2 target images"):
        precision_recall(a, a[:2])
    assert precision_recall(a[:4], a[:4])["precision"] == 1.0  # k + 1 images suffice


def test_bad_input_is_one_line(runs, tmp_path):
    with pytest.raises(GandaptError, match="nothing to evaluate"):
        evaluate_domain(str(runs["dm"]))
    with pytest.raises(GandaptError, match="no domain 'x'"):
        load_domain(str(runs["dm"]), domain="x")
    exe = Path(sys.executable).parent / "gandapt-train"
    proc = subprocess.run([str(exe), "eval", str(runs["dm"]), "--transform", "nope", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([str(exe), "eval", str(runs["dm"]), "--transform", "sketch", "--paired-n", "4", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["paired_n"] == 4
    # --base belongs to finetune models; with a pack it would be silently ignored, so it is refused
    proc = subprocess.run([str(exe), "eval", str(runs["dm"]), "--transform", "sketch", "--base", MODEL],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "leave --base out" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([str(exe), "eval", str(runs["ft"]), "--transform", "sketch", "--paired-n", "4",
                           "--base", MODEL, "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
