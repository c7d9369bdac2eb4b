"""New domains from reference images at run time: a DEGAN domain encoder, one forward pass each.

``gandapt-train degan --onnx enc.onnx`` exports the encoder on its own (``image [N, 3, R, R] → domain
[N, D_s]``) and records in the file's metadata the ``s``-stage layout of its base model and that
model's fingerprint. Here the runtime reads those, checks them against the bundle, runs the encoder
once per image (onnxruntime, CPU: it runs once per new domain, not per frame) and re-lays each vector
into the bundle's ``domain`` input (reference/methods.md §6.3, §11.5 item 5). numpy, OpenCV and
onnxruntime only; no torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from gandapt.errors import GandaptError

PathLike = Union[str, os.PathLike]
META_KEY = "gandapt_domain_encoder"  # written by gandapt.trainer.degan.export


def parse_domain_images(items: Sequence[str]) -> List[Tuple[str, Path]]:
    """``["ref.png", "warm=photos/b.jpg"]`` → ``[("ref", Path("ref.png")), ("warm", Path("photos/b.jpg"))]``.

    Raises:
        GandaptError: an empty name or two images with the same name.
    """
    out: List[Tuple[str, Path]] = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).stem, item
        name = name.strip()
        if not name or not path:
            raise GandaptError(f"bad --domain-image {item!r}; give IMAGE or NAME=IMAGE")
        if name in {n for n, _ in out}:
            raise GandaptError(f"two --domain-image entries are named {name!r}; name them: --domain-image NAME=IMAGE")
        out.append((name, Path(path)))
    return out


def read_image(path: Path, resolution: int) -> np.ndarray:
    """A reference image as the encoder's input [1, 3, R, R] float32 RGB in [-1, 1]: the centre square,
    resized to R.

    The crop and the Lanczos resize are the trainer's (:func:`gandapt.image_file.read_square`),
    so a picture gives the same domain here as through ``domain_from_image``. Pillow does the resize when
    it is installed (the trainer's extra has it); the bare runtime falls back to OpenCV's area resize,
    which differs from it by a few grey levels on downscaled pictures.

    Raises:
        GandaptError: a missing or unreadable file.
    """
    if not path.is_file():
        raise GandaptError(f"--domain-image {path} not found; give a PNG or JPG file")
    if importlib.util.find_spec("PIL") is None:  # the trainer's extra has Pillow; a bare runtime may not
        return _to_input(_read_cv2(path, resolution))
    from gandapt.image_file import read_square

    try:
        return _to_input(read_square(path, resolution))
    except GandaptError:
        raise GandaptError(f"--domain-image {path} is not an image that can be read; give a PNG or JPG "
                           "file") from None


def _read_cv2(path: Path, resolution: int) -> np.ndarray:
    """[R, R, 3] uint8 RGB through OpenCV (no EXIF rotation, as Pillow's path)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise GandaptError(f"--domain-image {path} is not an image that can be read; give a PNG or JPG file")
    h, w = bgr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = bgr[top:top + side, left:left + side]
    if side != resolution:
        interp = cv2.INTER_AREA if side > resolution else cv2.INTER_CUBIC
        square = cv2.resize(square, (resolution, resolution), interpolation=interp)
    return cv2.cvtColor(square, cv2.COLOR_BGR2RGB)


def _to_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 [R, R, 3] → float32 [1, 3, R, R] in [-1, 1]."""
    return (rgb.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None].copy()


class DomainEncoderSession:
    """An exported domain encoder, opened and checked against a bundle.

    Args:
        path: the ``.onnx`` file ``gandapt-train degan --onnx`` wrote.
        bundle: the opened :class:`~gandapt.runtime.bundle.Bundle` the domains are for.
        shipped: ``path`` is the shipped encoder standing in for a ``--domain-encoder`` the user left out
            (a bundle of another base model is then told to pass one).

    Raises:
        GandaptError: a missing file, one without gandapt's metadata, an encoder of another base model, or
            a bundle whose ``domain`` input has no ``s`` stage.
    """

    def __init__(self, path: PathLike, bundle, shipped: bool = False) -> None:
        import onnxruntime as ort

        from gandapt.layout import DomainLayout

        self.path = Path(path)
        if not self.path.is_file():
            raise GandaptError(f"--domain-encoder {self.path} not found; export one with "
                               "gandapt-train degan ... --onnx FILE.onnx")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable files
            raise GandaptError(f"--domain-encoder {self.path} is not a readable ONNX model ({type(err).__name__}); "
                               "give the .onnx written by gandapt-train degan --onnx") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise GandaptError(f"--domain-encoder {self.path} has no gandapt domain-encoder record; give the .onnx "
                               "written by gandapt-train degan --onnx (re-export it with this gandapt)")
        try:
            meta = json.loads(raw)
            got, layout, self.resolution = meta["base_fingerprint"], meta["layout"], int(meta["input"]["image"][-1])
        except (ValueError, KeyError, TypeError, IndexError):
            raise GandaptError(f"--domain-encoder {self.path} has a damaged gandapt record; re-export it with "
                               "gandapt-train degan --onnx") from None
        want = (bundle.manifest.source or {}).get("fingerprint")
        if got != want and shipped:
            raise GandaptError(f"--domain-image needs --domain-encoder FILE.onnx for this bundle's base model "
                               f"{want or '(unrecorded)'} (written by gandapt-train degan --onnx); the shipped encoder "
                               "only makes domains for the shipped avatar model")
        elif got != want:
            raise GandaptError(f"--domain-encoder {self.path} makes domains for base model {got or '(unrecorded)'}, "
                               f"but the bundle runs {want or '(unrecorded)'}; use an encoder trained on the "
                               "bundle's model")
        if "s" not in bundle.layout.stages:
            stages = ", ".join(bundle.layout.stages) or "(none)"
            raise GandaptError(f"the bundle's domain input has stages {stages}; a domain encoder makes StyleSpace (s) "
                               "domains: re-export the bundle with a pack that has s-stage domains, e.g. the degan "
                               "run's domains.safetensors")
        try:
            self.layout = DomainLayout.from_dict(bundle.layout.config, layout)
        except GandaptError as err:
            raise GandaptError(f"--domain-encoder {self.path}: {err}") from None
        self.bundle_layout = bundle.layout

    def domain(self, image: Path) -> np.ndarray:
        """The domain vector [D] of one reference image, in the bundle's layout."""
        out = self.session.run(["domain"], {"image": read_image(image, self.resolution)})[0]   # [1, D_s]
        if not np.all(np.isfinite(out)):
            raise GandaptError(f"the domain encoder returned non-finite values for {image}; the encoder file is "
                               "damaged or was trained to NaN")
        return self.layout.convert(out[0], self.bundle_layout).astype(np.float32)


def add_image_domains(bundle, encoder: Optional[PathLike], items: Sequence[str]) -> List[str]:
    """Make a domain per ``IMAGE`` / ``NAME=IMAGE`` with ``encoder`` and add it to ``bundle.vectors``.

    Args:
        bundle: the opened bundle (its ``vectors`` gain the new domains, after the shipped ones).
        encoder: the domain encoder's ``.onnx``; None: the shipped one
            (:func:`gandapt.samples.domain_encoder`), which fits only bundles of the shipped base model.
        items: see :func:`parse_domain_images`.

    Returns:
        The new domain names, in order.

    Raises:
        GandaptError: bad items, a name the bundle already has, or any error of
            :class:`DomainEncoderSession` and :func:`read_image`.
    """
    named = parse_domain_images(items)
    taken = [n for n, _ in named if n in bundle.vectors or n == "base"]
    if taken:
        raise GandaptError(f"the bundle already has a domain named {taken[0]!r}; name the image: "
                           f"--domain-image NEWNAME={dict(named)[taken[0]]}")
    path, shipped = _encoder_or_shipped(encoder)
    session = DomainEncoderSession(path, bundle, shipped=shipped)
    made: Dict[str, np.ndarray] = {name: session.domain(path) for name, path in named}
    bundle.vectors.update(made)
    return list(made)


def _encoder_or_shipped(encoder: Optional[PathLike]) -> Tuple[Path, bool]:
    """(path, shipped): ``encoder`` as given, or the shipped encoder when it is None."""
    if encoder is not None:
        return Path(encoder), False
    from gandapt.samples import DOMAIN_ENCODER, data_dir

    path = data_dir() / DOMAIN_ENCODER
    if not path.is_file():
        raise GandaptError("--domain-image needs --domain-encoder FILE.onnx (written by gandapt-train degan --onnx); "
                           f"this installation has no shipped one ({path})")
    return path, True
