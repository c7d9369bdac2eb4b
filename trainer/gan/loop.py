"""The base-GAN training loop behind ``gandapt-train base``.

One step = one D update (logistic loss, lazy R1 folded into the real pass every ``r1_interval``
steps) + one G update (non-saturating loss, style mixing) + an EMA update of G. Everything a
resume needs is checkpointed atomically, on a wall-clock cadence and at the end.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from gandapt.config import DiscriminatorConfig, GeneratorConfig
from gandapt.device import resolve_device
from gandapt.discriminator import Discriminator
from gandapt.errors import GandaptError
from gandapt.generator import Generator
from gandapt.trainer.gan import dist
from gandapt.trainer.gan.augment import diff_augment, parse_policy
from gandapt.trainer.gan.grid import save_grid
from gandapt.trainer.gan.loss import d_loss_with_r1, g_loss
from gandapt.trainer.gan.options import BaseTrainOptions
from gandapt.trainer.gan.state import (CHECKPOINT, TrainState, load_checkpoint, rng_state,
                                       save_checkpoint, set_rng_state)
from gandapt.trainer.rundir import prepare_out, write_json
from gandapt.trainer.steps import StopRequest, truncate_log

GRID_SIZE = 64  # samples in each snapshot grid (8×8, fixed latents)


RUN_FILES = ("checkpoint.pt", "model.pt", "log.jsonl", "metrics.jsonl", "training_options.json")


def load_images(path: str, resolution: Optional[int], strict: bool = False) -> torch.Tensor:
    """Read a whole image folder into memory as uint8 [N, 3, R, R] (training draws from it randomly).

    Unreadable images are skipped (or stop the run with ``strict``) and odd sizes are resized; each
    is reported once on stderr as a one-line warning.
    """
    import warnings

    from gandapt.trainer.data.folder import ImageFolderDataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolderDataset(path, resolution=resolution, strict=strict)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    arr = np.stack([ds.image(i) for i in range(len(ds))])  # [N, R, R, 3] uint8
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def build_networks(options: BaseTrainOptions, resolution: int):
    """Fresh G and D for ``options`` at ``resolution`` (seeded, identical on every process)."""
    channels = options.resolved_channels(resolution)
    g_cfg = GeneratorConfig(z_dim=options.z_dim, w_dim=options.w_dim, img_resolution=resolution,
                            channels=channels, mapping_layers=options.mapping_layers)
    d_cfg = DiscriminatorConfig(img_resolution=resolution, channels=channels, downsample=options.d_downsample)
    torch.manual_seed(options.seed)
    G, D = Generator(g_cfg), Discriminator(d_cfg)
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mean_latent(1024, seed=options.seed))  # a sane start for truncated grids
    return G, D


def _ema_beta(options: BaseTrainOptions, images_seen: int, batch: int) -> float:
    ema_nimg = options.ema_kimg * 1000
    if options.ema_rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * options.ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def _update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    for pe, p in zip(G_ema.parameters(), G.parameters()):
        pe.copy_(p.lerp(pe, beta))
    for be, b in zip(G_ema.buffers(), G.buffers()):
        be.copy_(b)


def _mixed_ws(G: Generator, z: torch.Tensor, z2: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Mapping with style mixing: with probability ``prob`` the rows from a random cutoff use z2."""
    ws = G.mapping(z, update_w_avg=True)
    if prob > 0 and torch.rand([], generator=gen).item() < prob:
        cutoff = int(torch.randint(1, G.num_ws, [], generator=gen))
        ws = torch.cat([ws[:, :cutoff], G.mapping(z2)[:, cutoff:]], dim=1)
    return ws


def train_step(G: Generator, D: Discriminator, G_opt, D_opt, real: torch.Tensor, options: BaseTrainOptions,
               augment: Callable[[torch.Tensor], torch.Tensor], gen: torch.Generator, do_r1: bool,
               info: dist.DistInfo = dist.DistInfo()) -> dict:
    """One D update (with R1 when ``do_r1``) and one G update on the real batch [B, 3, R, R].

    Returns:
        {'loss_g', 'loss_d', 'r1'} as floats (r1 None when not computed).
    """
    b, device = real.shape[0], real.device
    # D step (+ lazy R1 in the same real pass)
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad():
        z, z2 = torch.randn(2, b, G.z_dim, device=device)
        fake = G.synthesis(_mixed_ws(G, z, z2, options.style_mixing, gen), noise_mode="random")
    r1_weight = options.r1_gamma / 2 * options.r1_interval if do_r1 else 0.0
    loss_d, d_main, r1 = d_loss_with_r1(D, real, fake, augment, r1_weight)
    D_opt.zero_grad(set_to_none=True)
    loss_d.backward()
    dist.average_gradients(D, info)
    D_opt.step()

    # G step
    G.requires_grad_(True)
    D.requires_grad_(False)
    z, z2 = torch.randn(2, b, G.z_dim, device=device)
    fake = G.synthesis(_mixed_ws(G, z, z2, options.style_mixing, gen), noise_mode="random")
    loss_g = g_loss(D(augment(fake)))
    G_opt.zero_grad(set_to_none=True)
    loss_g.backward()
    dist.average_gradients(G, info)
    G_opt.step()
    return {"loss_g": loss_g.item(), "loss_d": d_main.item(), "r1": r1.item() if do_r1 else None}


def train_base(options: BaseTrainOptions, resume: bool = False, force: bool = False,
               on_step: Optional[Callable[[int], None]] = None) -> Path:
    """Train a StyleGAN2 from scratch on an image folder.

    Args:
        options: the run's settings.
        resume: continue the run in ``options.out`` from its checkpoint.
        force: start over in an existing ``options.out``.
        on_step: called with the step number after each completed step (tests, tooling).

    Returns:
        Path of the final model file (``out/model.pt``: G_ema + D in gandapt's native format).
    """
    out = Path(options.out)
    device = resolve_device(options.device)
    info = dist.init_from_env(device)
    if options.threads:
        torch.set_num_threads(options.threads)
    images = load_images(options.data, options.resolution, options.strict)  # [N, 3, R, R] uint8; bad data fails first
    if info.is_main:
        prepare_out(out, resume, force, RUN_FILES)
    dist.barrier(info)
    resolution = images.shape[-1]
    options = _resolved(options, resolution)
    policy = parse_policy(options.augment)
    G, D = build_networks(options, resolution)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    for net in (G, G_ema, D):  # before the optimisers, so resumed Adam state lands on the device too
        net.to(device)
        if options.channels_last:
            net.to(memory_format=torch.channels_last)
    # lazy-regularisation Adam correction (StyleGAN2 §B); none when R1 is off
    ratio = options.r1_interval / (options.r1_interval + 1) if options.r1_gamma > 0 else 1.0
    G_opt = torch.optim.Adam(G.parameters(), lr=options.g_lr, betas=(0.0, options.beta2))
    D_opt = torch.optim.Adam(D.parameters(), lr=options.d_lr * ratio, betas=(0.0, options.beta2**ratio))
    data_gen = torch.Generator().manual_seed(options.seed * 1000 + info.rank)
    aug_gen = torch.Generator().manual_seed(options.seed * 1000 + 500 + info.rank)
    torch.manual_seed(options.seed * 1000 + 1 + info.rank)
    state = TrainState()

    if resume:
        ckpt, train = load_checkpoint(out / CHECKPOINT, options)
        G.load_state_dict(train["G"])
        G_ema.load_state_dict(ckpt.G.state_dict())
        D.load_state_dict(ckpt.D.state_dict())
        G_opt.load_state_dict(train["G_opt"])
        D_opt.load_state_dict(train["D_opt"])
        state = TrainState(train["step"], train["images_seen"], train["seconds"])
        if info.world_size == 1:  # per-rank RNG streams are not saved for multi-process runs
            set_rng_state(train["rng"], data_gen, aug_gen)
        elif info.is_main:
            print("warning: multi-process resume restarts the per-process random streams from the seed",
                  file=sys.stderr)
        if info.is_main:
            truncate_log(out / "log.jsonl", state.step)  # steps after the checkpoint run again
    dist.broadcast_module(G, info)
    dist.broadcast_module(D, info)
    grid_z = torch.randn(GRID_SIZE, G.z_dim, generator=torch.Generator().manual_seed(options.seed)).to(device)
    if info.is_main:
        write_json(out / "training_options.json", options.to_dict())

    total = options.total_steps()
    local_batch = max(1, options.batch // info.world_size)
    augment = (lambda x: diff_augment(x, policy, aug_gen)) if policy else (lambda x: x)
    progress = None
    if info.is_main and options.progress:
        from tqdm import tqdm
        progress = tqdm(total=total, initial=state.step, unit="step", desc="base", dynamic_ncols=True)
    last_ckpt = time.monotonic()
    log = (out / "log.jsonl").open("a") if info.is_main else None

    def checkpoint() -> None:
        if info.is_main:
            save_checkpoint(out / CHECKPOINT, G, G_ema, D, G_opt, D_opt, state, options,
                            rng_state(data_gen, aug_gen))

    # Ctrl-C / SIGTERM finish the step in flight, so the checkpoint is taken at a step boundary.
    stop = StopRequest()
    try:
        while state.step < total and not stop.requested:
            t0 = time.perf_counter()
            idx = torch.randint(images.shape[0], [local_batch], generator=data_gen)
            real = images[idx].to(device).float() / 127.5 - 1  # [B, 3, R, R]
            if options.xflip:
                flip = torch.rand(local_batch, generator=data_gen) < 0.5
                real = torch.where(flip[:, None, None, None].to(device), real.flip(3), real)
            if options.channels_last:
                real = real.contiguous(memory_format=torch.channels_last)

            do_r1 = options.r1_gamma > 0 and state.step % options.r1_interval == 0
            losses = train_step(G, D, G_opt, D_opt, real, options, augment, aug_gen, do_r1, info)
            batch_images = local_batch * info.world_size
            _update_ema(G_ema, G, _ema_beta(options, state.images_seen, batch_images))
            state.step += 1
            state.images_seen += batch_images
            dt = time.perf_counter() - t0
            state.seconds += dt
            if info.is_main:
                _log_step(log, progress, state, losses, dt, options.batch)
                if options.sample_every and state.step % options.sample_every == 0:
                    _snapshot(G_ema, grid_z, out, state.step)
                if options.fid_every and state.step % options.fid_every == 0:
                    _measure_fid(G_ema, options, out, state)
            due = (time.monotonic() - last_ckpt) / 60 >= options.checkpoint_minutes
            if due or (options.checkpoint_every and state.step % options.checkpoint_every == 0):
                checkpoint()
                last_ckpt = time.monotonic()
            if on_step is not None:
                on_step(state.step)
    finally:
        stop.restore()
        if progress is not None:
            progress.close()
        if log is not None:
            log.close()
    if stop.requested:
        checkpoint()
        raise GandaptError(f"interrupted after step {state.step}; checkpoint saved, continue with --resume")

    checkpoint()
    final = out / "model.pt"
    if info.is_main:
        from gandapt.checkpoint import save_native

        _snapshot(G_ema, grid_z, out, state.step)
        save_native(final, G_ema.cpu(), D.cpu(), extra={"training_options": options.to_dict(),
                                                        "images_seen": state.images_seen}, force=True)
    dist.barrier(info)
    dist.shutdown(info)
    return final


def _resolved(options: BaseTrainOptions, resolution: int) -> BaseTrainOptions:
    """Fill the dataset-dependent defaults so the saved options describe the run exactly."""
    return dataclasses.replace(options, resolution=resolution, channels=options.resolved_channels(resolution))



def _log_step(log, progress, state: TrainState, losses: dict, dt: float, batch: int) -> None:
    rec = {"step": state.step, "kimg": round(state.images_seen / 1000, 3), "sec_per_step": round(dt, 4),
           **{k: (round(v, 5) if isinstance(v, float) and math.isfinite(v) else v) for k, v in losses.items()}}
    log.write(json.dumps(rec) + "\n")
    log.flush()
    if progress is not None:
        progress.update(1)
        progress.set_postfix(g=f"{losses['loss_g']:.3f}", d=f"{losses['loss_d']:.3f}", ips=f"{batch / dt:.1f}")


def _measure_fid(G_ema: Generator, options: BaseTrainOptions, out: Path, state: TrainState) -> None:
    """FID/KID of the EMA generator against the training data, appended to ``metrics.jsonl``."""
    from gandapt.trainer.metrics import evaluate_generator

    device = str(next(G_ema.parameters()).device)
    r = evaluate_generator(G_ema, options.data, n=options.fid_n, device=device, progress=False)
    rec = {"step": state.step, "kimg": round(state.images_seen / 1000, 3), **r}
    with (out / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(rec) + "\n")


@torch.no_grad()
def _snapshot(G_ema: Generator, grid_z: torch.Tensor, out: Path, step: int) -> None:
    imgs = torch.cat([G_ema(z, truncation_psi=0.7) for z in grid_z.split(16)])
    save_grid(imgs.cpu(), out / "samples" / f"fakes{step:07d}.png")
