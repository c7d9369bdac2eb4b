"""The sample clip: a licence-clean MP4 of python-avatars that stands in for a webcam.

Three avatars take turns on screen, a third of the clip each. While on screen an avatar talks (its
mouth switches between a few shapes every few frames), blinks now and then, and drifts, bobs and
zooms a few pixels, as a person in front of a webcam does. It is head-and-shoulders framed in the
middle of a landscape frame, so the largest centred square looks like a training avatar (the
avatar about as tall as the square, its top near the top edge).

Every frame is a pure function of the recipe below: one seeded ``random.Random`` per avatar plans
the mouth and blink schedule, and the motion is a sum of sines. The MP4 bytes may differ between
OpenCV builds; the decoded frames do not (beyond codec noise).
"""

from __future__ import annotations

import copy
import io
import os
import random
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from gandapt.errors import GandaptError
from gandapt.io import check_writable

# Avatar seed: the training set uses seed 0, so these faces are not in it, and this seed's first
# three wear no tinted glasses (their eyes, and so the blinks, stay visible).
SEED = 2036
AVATARS = 3
RENDER_HEIGHT = 280  # cairosvg drops masked fills below 256 px (trainer/data/avatars.py)
# Mouth shapes of speech: closed (DEFAULT, SERIOUS), open (DISBELIEF, SMILE), wide (SCREAM_OPEN);
# each held 2-4 frames, about syllable rate.
TALK = ("DEFAULT", "SERIOUS", "DISBELIEF", "SMILE", "SCREAM_OPEN")
OPEN_EYES = "DEFAULT"  # not the avatar's own eyes: hearts, winks or crosses do not blink
BLINK = ("CLOSED", 2)  # eyes, frames: ~130 ms at 15 fps
# Now and then instead of a blink, as a laughing person does. python-avatars' HAPPY is the
# squinted look; its SQUINT draws wide-open eyes.
SQUINT = ("HAPPY", 5)
SQUINT_ODDS = 0.25
BLINK_EVERY = (1.0, 2.5)  # seconds between blinks, drawn uniformly (the first comes sooner)
DRIFT_PX, BOB_PX, ZOOM = 4.0, 3.0, 0.02  # motion amplitudes at the 144 px frame height
OVERSIZE = 1.05  # avatar height / frame height: keeps the shoulders below the frame's bottom edge


def _render_rgba(avatar: Any, mouth: str, eyes: str, height: int) -> np.ndarray:
    """One avatar pose as premultiplied float32 RGBA [height, width, 4] in [0, 1]."""
    import cairosvg
    import cv2
    import python_avatars as pa
    from PIL import Image

    pose = copy.copy(avatar)  # sample_avatar's object is shared by every pose of this avatar
    pose.mouth, pose.eyes = pa.MouthType[mouth], pa.EyeType[eyes]
    png = cairosvg.svg2png(bytestring=pose.render().encode(), output_height=RENDER_HEIGHT)
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.float32) / 255.0
    rgba[..., :3] *= rgba[..., 3:]  # premultiply: no dark fringes when warped and blended
    width = int(round(rgba.shape[1] * height / rgba.shape[0]))
    return cv2.resize(rgba, (width, height), interpolation=cv2.INTER_AREA)


def _schedule(rng: random.Random, frames: int, fps: int) -> List[Tuple[str, str]]:
    """(mouth, eyes) names for each of an avatar's frames: talking, with blinks and squints."""
    poses: List[Tuple[str, str]] = []
    mouth, hold = "DEFAULT", 0
    eyes, shut = OPEN_EYES, 0  # shut: frames the current blink or squint still lasts
    wait = int(rng.uniform(0.2, BLINK_EVERY[0]) * fps)  # so even a short turn on screen blinks
    for _ in range(frames):
        if hold == 0:
            mouth, hold = rng.choice([m for m in TALK if m != mouth]), rng.randint(2, 4)
        if wait == 0:
            eyes, shut = SQUINT if rng.random() < SQUINT_ODDS else BLINK
            wait = shut + int(rng.uniform(*BLINK_EVERY) * fps)
        poses.append((mouth, eyes if shut > 0 else OPEN_EYES))
        hold, wait, shut = hold - 1, wait - 1, shut - 1
    return poses


def _motion(t: float, phase: float) -> Tuple[float, float, float]:
    """Horizontal drift and downward bob in px at the 144 px frame height, and zoom, at time ``t``."""
    dx = DRIFT_PX * np.sin(2 * np.pi * 0.23 * t + phase)
    dy = BOB_PX * 0.5 * (1 + np.sin(2 * np.pi * 0.61 * t + 2 * phase))  # >= 0: never lifts the shoulders
    zoom = 1 + ZOOM * np.sin(2 * np.pi * 0.17 * t + 3 * phase)
    return float(dx), float(dy), float(zoom)


def _composite(sprite: np.ndarray, background: Tuple[int, int, int], size: Tuple[int, int],
               dx: float, dy: float, zoom: float) -> np.ndarray:
    """Warp the premultiplied sprite onto a flat background: uint8 RGB [H, W, 3]."""
    import cv2

    width, height = size
    s = zoom * OVERSIZE * height / sprite.shape[0]
    # Centred; being taller than the frame, the head's top stays near the top edge and the
    # shoulders run off the bottom edge whatever the bob and zoom.
    tx = (width - s * sprite.shape[1]) / 2 + dx * height / 144
    ty = (height - s * sprite.shape[0]) / 2 + dy * height / 144
    warp = np.float32([[s, 0, tx], [0, s, ty]])
    layer = cv2.warpAffine(sprite, warp, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))  # sub-pixel smooth
    rgb = np.asarray(background, np.float32) / 255.0 * (1 - layer[..., 3:]) + layer[..., :3]
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def avatar_clip_frames(seconds: float = 6.0, fps: int = 15,
                       size: Tuple[int, int] = (192, 144)) -> List[np.ndarray]:
    """The clip's frames, without encoding them.

    Args:
        seconds: clip length; ``round(seconds * fps)`` frames.
        fps: frames per second.
        size: ``(width, height)`` in px.

    Returns:
        The frames, uint8 RGB [height, width, 3].
    """
    from gandapt.trainer.data.avatars import sample_avatar

    width, height = size
    n = int(round(seconds * fps))
    if n < 1 or fps < 1 or width < 16 or height < 16:
        raise GandaptError(f"need seconds * fps >= 1, fps >= 1 and a size of at least 16 x 16 "
                           f"(got seconds={seconds}, fps={fps}, size={size})")
    sprite_height = int(np.ceil(height * OVERSIZE * (1 + ZOOM)))  # its largest drawn size: warps only shrink
    cache: Dict[Tuple[int, str, str], np.ndarray] = {}
    frames: List[np.ndarray] = []
    for k in range(AVATARS):
        avatar, background = sample_avatar(SEED, k)
        first, last = k * n // AVATARS, (k + 1) * n // AVATARS
        poses = _schedule(random.Random(SEED * 100 + k), last - first, fps)
        for i, (mouth, eye) in zip(range(first, last), poses):
            key = (k, mouth, eye)
            if key not in cache:
                cache[key] = _render_rgba(avatar, mouth, eye, sprite_height)
            dx, dy, zoom = _motion(i / fps, phase=1.7 * k)
            frames.append(_composite(cache[key], background, size, dx, dy, zoom))
    return frames


def build_avatar_clip(path: Path, seconds: float = 6.0, fps: int = 15, size: Tuple[int, int] = (192, 144),
                      force: bool = False) -> None:
    """Write the sample clip to ``path`` as an MP4 ('mp4v'), atomically.

    Args:
        path: target file; its name should end in ``.mp4``.
        seconds: clip length; ``round(seconds * fps)`` frames, three avatars a third each.
        fps: frames per second.
        size: ``(width, height)`` in px; the default is a small landscape webcam frame.
        force: overwrite an existing file.

    Raises:
        GandaptError: the file exists and ``force`` is False, bad arguments, or OpenCV cannot
            write MP4 here.
    """
    import cv2

    path = check_writable(path, force)
    frames = avatar_clip_frames(seconds, fps, size)
    # VideoWriter picks the container from the extension, so the temporary name ends in .mp4 too.
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp.mp4"
    try:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, tuple(size))
        if not writer.isOpened():
            raise GandaptError(f"OpenCV cannot write MP4 ('mp4v') to {tmp.parent}; check the folder is "
                               "writable and use an OpenCV built with FFmpeg (pip install opencv-python)")
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))  # OpenCV encodes BGR
        finally:
            writer.release()
        with open(tmp, "rb+") as f:  # make the bytes durable before the rename
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
