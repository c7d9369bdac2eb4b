"""The bundle's optional ``encoder.onnx`` (image → ws, for the camera path): which encoder, does it fit.

Where the encoder comes from, in order:

1. ``encoder=`` (a path to an encoder file written by :func:`gandapt.checkpoint.save_encoder`, or a
   loaded :class:`~gandapt.checkpoint.EncoderFile`; the CLI's ``--encoder ENCODER.pt``);
2. the model's ``extra['encoder']``: ``{'config': EncoderConfig.to_dict(), 'state_dict': {key: tensor},
   'base_fingerprint': str}`` (the encoder file's fields, stored inside ``model.pt``);
3. neither: the bundle has no encoder graph.

An encoder trained for another base model is refused: its ws would land somewhere else in W+.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional

from gandapt.errors import GandaptError, one_line
from gandapt.runtime.crop import FACE_SCALE, FACE_SHIFT

EXTRA_ENCODER_KEY = "encoder"
ENCODER_FILE = "encoder.onnx"
INPUT_CONVENTION = "RGB in [-1, 1]"  # NCHW float32, x / 127.5 - 1 (gandapt.runtime.crop.to_input)
ENCODER_FINGERPRINT_PREFIX = "e1:"


def resolve_encoder(ckpt: Any, encoder: Any = None) -> Optional[Any]:
    """The encoder to export: ``encoder``, else the model's ``extra['encoder']``, else None.

    Args:
        ckpt: the loaded :class:`~gandapt.checkpoint.Checkpoint`.
        encoder: an encoder file path or :class:`~gandapt.checkpoint.EncoderFile`, or None.

    Returns:
        An :class:`~gandapt.checkpoint.EncoderFile` checked against ``ckpt``, or None.

    Raises:
        GandaptError: an unreadable encoder, or one made for another base model or generator shape.
    """
    from gandapt.checkpoint import EncoderFile, load_encoder

    if encoder is None:
        stored = (ckpt.extra or {}).get(EXTRA_ENCODER_KEY)
        if stored is None:
            return None
        found = encoder_from_extra(stored, f"{ckpt.path} (extra['{EXTRA_ENCODER_KEY}'])")
    elif isinstance(encoder, EncoderFile):
        found = encoder
    elif isinstance(encoder, (str, os.PathLike)):
        found = load_encoder(encoder)
    else:
        raise GandaptError(f"encoder= takes an encoder file path or EncoderFile, not a {type(encoder).__name__}")
    check_encoder(found, ckpt)
    return found


def encoder_from_extra(stored: Any, where: str) -> Any:
    """An :class:`~gandapt.checkpoint.EncoderFile` from ``{'config', 'state_dict', 'base_fingerprint'}``.

    Raises:
        GandaptError: not that shape, or weights that do not fit the config.
    """
    from gandapt.checkpoint import EncoderFile
    from gandapt.encoder import Encoder, EncoderConfig

    if not isinstance(stored, Mapping) or not {"config", "state_dict", "base_fingerprint"} <= set(stored):
        got = sorted(stored) if isinstance(stored, Mapping) else type(stored).__name__
        raise GandaptError(f"{where} is {got}; expected {{'config', 'state_dict', 'base_fingerprint'}}: "
                           "re-save the model with gandapt-train, or pass --encoder ENCODER.pt")
    try:
        config = EncoderConfig.from_dict(stored["config"])
        E = Encoder(config)
        E.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in stored["state_dict"].items()})
    except (TypeError, AttributeError, RuntimeError, GandaptError) as e:
        raise GandaptError(f"{where} does not match its stored config ({one_line(e, 160)}); "
                           "re-save the model with gandapt-train, or pass --encoder ENCODER.pt") from None
    return EncoderFile(E.eval(), config, str(stored["base_fingerprint"]), where)


def check_encoder(enc: Any, ckpt: Any) -> None:
    """Refuse an encoder trained for another base model, or shaped for another generator.

    Raises:
        GandaptError: one line naming both fingerprints (or the mismatched sizes) and the fix.
    """
    if enc.base_fingerprint != ckpt.fingerprint:
        raise GandaptError(f"encoder {enc.path} was trained for base model {enc.base_fingerprint or '(none recorded)'} "
                           f"but {ckpt.path} is {ckpt.fingerprint}; pass the encoder trained for this model "
                           "(gandapt-train encoder) or export without --encoder")
    c, g = enc.config, ckpt.config
    if (c.img_resolution, c.num_ws, c.w_dim) != (g.img_resolution, g.num_ws, g.w_dim):
        raise GandaptError(f"encoder {enc.path} reads {c.img_resolution} px and writes ws [{c.num_ws}, {c.w_dim}] but "
                           f"{ckpt.path} makes {g.img_resolution} px from ws [{g.num_ws}, {g.w_dim}]; "
                           "retrain the encoder for this model")


def encoder_fingerprint(enc: Any) -> str:
    """``'e1:'`` + 24 hex digits: :func:`gandapt.fingerprint.fingerprint`'s hash over the encoder's
    config and state (so a re-saved or fp16-stored copy of the same weights keeps its id)."""
    from gandapt.fingerprint import fingerprint

    state = {k: v.detach().cpu().float().numpy() for k, v in enc.E.state_dict().items()}
    return ENCODER_FINGERPRINT_PREFIX + fingerprint(enc.config, state).split(":", 1)[1]


def encoder_manifest_fields(enc: Any) -> Dict[str, Any]:
    """What ``graphs['encoder']`` records beyond the common graph entry: input convention, the crop the
    runtime applies before the encoder, and the encoder's identity."""
    return {
        "resolution": enc.config.img_resolution,
        "input_convention": INPUT_CONVENTION,
        "crop": {"mode": "face", "module": "gandapt.runtime.crop", "face_scale": FACE_SCALE,
                 "face_shift": FACE_SHIFT},
        "fingerprint": encoder_fingerprint(enc),
        "base_fingerprint": enc.base_fingerprint,
        "source": str(enc.path),
    }
