"""gandapt.samples: the embedded default model, pack, bundle and clip, shipped as package data.

The files live in ``data/`` beside this module, in the repository and in an installed copy alike.
"""

from __future__ import annotations

from pathlib import Path

from gandapt.errors import GandaptError


def data_dir() -> Path:
    """The folder holding the sample files."""
    return Path(__file__).resolve().parent / "data"


def data_path(name: str) -> Path:
    """Path of one sample file, e.g. ``data_path("tiny_g32.pt")``.

    Raises:
        GandaptError: no such sample file (lists the ones there are).
    """
    path = data_dir() / name
    if not path.is_file():
        have = sorted(p.name for p in data_dir().glob("*") if p.is_file()) if data_dir().is_dir() else []
        raise GandaptError(
            f"no sample file {name!r} in {data_dir()}; available: {', '.join(have) or 'none'}"
        )
    return path


# File names of the shipped samples; recipes in gandapt.samples.build make each one.
BASE_MODEL = "avatars64.pt"
ENCODER = "avatars64_encoder.pt"
CLIP = "avatar_clip.mp4"
PACK = "avatars64_domains.safetensors"
BUNDLE = "avatars64_bundle"
DOMAIN_ENCODER = "avatars64_domain_encoder.onnx"


def base_model() -> Path:
    """The embedded base model: a 64 px StyleGAN2 trained on procedural avatars, with its
    discriminator (adapter methods need D). Load it with ``gandapt.load(base_model())``."""
    return data_path(BASE_MODEL)


def encoder() -> Path:
    """The W+ inversion encoder of :func:`base_model` (image [N, 3, 64, 64] -> ws [N, num_ws, w_dim]).
    Load it with ``gandapt.load_encoder(encoder())``."""
    return data_path(ENCODER)


def clip() -> Path:
    """A short MP4 of avatar renders made by the project: the camera path's input when no webcam
    exists (``gandapt-run --source sample``)."""
    return data_path(CLIP)


def domain_pack() -> Path:
    """The shipped domain pack of :func:`base_model` (sketch, ink, painting, colorshift, pixel, sketch_ink)."""
    return data_path(PACK)


def domain_encoder() -> Path:
    """The DEGAN domain encoder of :func:`base_model`, in ONNX: a reference image [N, 3, 64, 64] in [-1, 1]
    -> a domain [N, D] in one forward pass (``gandapt-run --domain-image``)."""
    return data_path(DOMAIN_ENCODER)


def bundle() -> Path:
    """The exported bundle of the base model, its domains and encoder (what ``gandapt-run`` runs)."""
    path = data_dir() / BUNDLE
    if not (path / "manifest.json").is_file():
        raise GandaptError(f"no sample bundle in {path}; rebuild it with python -m gandapt.samples.build {BUNDLE}")
    return path
