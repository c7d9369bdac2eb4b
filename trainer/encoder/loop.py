"""The training loop behind ``gandapt-train encoder`` (a W+ inversion encoder for a frozen G).

Each batch mixes G's own images, whose latents are known (latent loss + image loss), with real
images of the domain, which only have an image loss: ``G(E(x)) ≈ x`` with gradients flowing
through the frozen synthesis network into the encoder (pSp, Richardson et al. 2021; e4e's offset
regulariser, Tov et al. 2021). ``checkpoint.pt`` is a loadable encoder file at every moment; its
``extra['train']`` holds what ``--resume`` needs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Optional

import torch

from gandapt.checkpoint import load as load_model
from gandapt.checkpoint import load_encoder, save_encoder
from gandapt.device import resolve_device
from gandapt.encoder import Encoder, EncoderConfig
from gandapt.errors import GandaptError
from gandapt.trainer.encoder.evaluate import evaluate_encoder, latent_variance, sample_pairs, summary_lines
from gandapt.trainer.encoder.options import EncoderTrainOptions
from gandapt.trainer.gan.grid import save_grid
from gandapt.trainer.gan.loop import load_images
from gandapt.trainer.rundir import prepare_out, write_json
from gandapt.trainer.steps import Counter, adam_update, check_resume, run_steps

CHECKPOINT, FINAL = "checkpoint.pt", "encoder.pt"
RUN_FILES = (CHECKPOINT, FINAL, "log.jsonl", "metrics.json", "training_options.json")


def split_images(options: EncoderTrainOptions, resolution: int):
    """(train, held_out) uint8 image tensors [N, 3, R, R] from ``options.data`` (None, None without data)."""
    if options.data is None:
        return None, None
    images = load_images(options.data, resolution)
    if options.holdout >= len(images):
        raise GandaptError(f"--holdout {options.holdout} leaves no training images of the {len(images)} in "
                           f"{options.data}; lower --holdout")
    cut = len(images) - options.holdout
    return images[:cut], images[cut:]


def train_encoder(options: EncoderTrainOptions, resume: bool = False, force: bool = False,
                  on_step: Optional[Callable[[int], None]] = None) -> Path:
    """Train an inversion encoder for ``options.model`` and evaluate it on held-out data.

    Args:
        options: the run's settings.
        resume: continue the run in ``options.out`` from its checkpoint.
        force: start over in an existing ``options.out``.
        on_step: called with the step number after each completed step.

    Returns:
        Path of ``out/encoder.pt`` (its ``extra['metrics']`` holds the evaluation; also in
        ``out/metrics.json``).
    """
    out = Path(options.out)
    device = resolve_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    base = load_model(options.model, device=device, with_d=False)
    G = base.G.eval().requires_grad_(False)
    train_images, held_out = split_images(options, G.img_resolution)
    prepare_out(out, resume, force, RUN_FILES, CHECKPOINT)

    cfg = EncoderConfig.for_generator(base.config, channels=options.channels,
                                      head_channels=options.head_channels, head_dim=options.head_dim)
    torch.manual_seed(options.seed)
    E = Encoder(cfg).to(device)
    with torch.no_grad():
        E.w_avg.copy_(G.mapping.w_avg)
    opt = torch.optim.Adam(E.parameters(), lr=options.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(options.seed)
    counter = Counter()
    if resume:
        prev = load_encoder(out / CHECKPOINT)
        train = prev.extra.get("train") or {}
        check_resume(out, out / CHECKPOINT, options.incompatible_with(EncoderTrainOptions.from_dict(train.get("options", {}))),
                     prev.base_fingerprint, base.fingerprint)
        E.load_state_dict(prev.E.state_dict())
        opt.load_state_dict(train["opt"])
        gen.set_state(train["rng"])
        counter = Counter(int(train["step"]), float(train["seconds"]))
    w_var = latent_variance(G, seed=options.seed)
    write_json(out / "training_options.json", options.to_dict())

    def checkpoint() -> None:
        save_encoder(out / CHECKPOINT, E, base.fingerprint, force=True, extra={"train": {
            "opt": opt.state_dict(), "rng": gen.get_state(), "step": counter.step, "seconds": counter.seconds,
            "options": options.to_dict()}})

    n_real = int(round(options.batch * options.real_fraction)) if train_images is not None else 0
    n_fake = options.batch - n_real

    def step_fn(step: int):
        with torch.no_grad():
            x_fake, ws = sample_pairs(G, n_fake, gen, options.psi_min, options.style_mixing)
        x = x_fake
        if n_real:
            idx = torch.randint(len(train_images), [n_real], generator=gen)
            real = train_images[idx].to(device).float() / 127.5 - 1              # [n_real, 3, R, R]
            flip = (torch.rand(n_real, generator=gen) < 0.5)[:, None, None, None].to(device)
            x = torch.cat([x_fake, torch.where(flip, real.flip(3), real)])
        pred, delta = E.forward_parts(x)                                          # [B, num_ws, w_dim] ×2
        rec = G.synthesis(pred, noise_mode="const")                               # [B, 3, R, R]
        loss_w = (pred[:n_fake] - ws).pow(2).mean() / w_var
        loss_img = (rec - x).pow(2).mean()
        loss_delta = delta.pow(2).mean()
        loss = options.lambda_w * loss_w + options.lambda_img * loss_img + options.lambda_delta * loss_delta
        rec_psnr = float(10 * torch.log10(4 / (rec.detach() - x).pow(2).mean().clamp_min(1e-10)))
        if options.sample_every and (step + 1) % options.sample_every == 0:
            _snapshot(x, rec, n_fake, out, step + 1)
        return loss, {"loss_w": round(loss_w.item(), 5), "loss_img": round(loss_img.item(), 5),
                      "loss_delta": round(loss_delta.item(), 6), "psnr": round(rec_psnr, 3)}

    E.train()
    run_steps(counter, options.steps, step_fn, adam_update(opt), out=out, desc="encoder", progress=options.progress,
              checkpoint=checkpoint, checkpoint_minutes=options.checkpoint_minutes, on_step=on_step,
              postfix=lambda log: {"w": f"{log['loss_w']:.3f}", "psnr": f"{log['psnr']:.1f}"})
    step, seconds = counter.step, counter.seconds

    metrics = evaluate_encoder(E, G, w_var, held_out, n=options.eval_n, psi_min=options.psi_min, grid_dir=out)
    for line in summary_lines(metrics):
        print(line, file=sys.stderr)
    write_json(out / "metrics.json", metrics)
    return save_encoder(out / FINAL, E.eval(), base.fingerprint, force=True, extra={
        "training_options": options.to_dict(), "steps": step, "seconds": round(seconds, 1), "metrics": metrics})


@torch.no_grad()
def _snapshot(x: torch.Tensor, rec: torch.Tensor, n_fake: int, out: Path, step: int) -> None:
    """Inputs over reconstructions: up to 4 G samples, then up to 4 real images."""
    idx = torch.cat([torch.arange(min(4, n_fake)), n_fake + torch.arange(min(4, x.shape[0] - n_fake))])
    (out / "samples").mkdir(exist_ok=True)
    save_grid(torch.cat([x[idx], rec[idx]]), out / "samples" / f"recon{step:07d}.png", cols=len(idx))
