"""Checkpoint loading and saving: rosinality ``.pt``, NVlabs ``.pkl`` / state dicts, gandapt native.

:func:`load` detects the format from the file's content and returns a :class:`Checkpoint` with the
EMA generator as ``.G``. No checkpoint ever runs code: torch files load with ``weights_only=True``
(plus ``argparse.Namespace`` for rosinality training checkpoints) and NVlabs pickles go through a
restricted unpickler that reads the networks' state as data. Every failure is one
:class:`~gandapt.errors.CheckpointError` line naming the file, the problem and the fix.
"""

from gandapt.checkpoint.common import FORMATS, SUPPORTED_FORMATS, Checkpoint, NetworkStates
from gandapt.checkpoint.detect import build, load, read_states, sniff
from gandapt.checkpoint.infer import (
    discriminator_shapes,
    generator_shapes,
    infer_discriminator_config,
    infer_generator_config,
)
from gandapt.checkpoint.encoder_file import EncoderFile, load_encoder, save_encoder
from gandapt.checkpoint.native import FORMAT_VERSION, save_native
from gandapt.errors import CheckpointError

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "EncoderFile",
    "FORMATS",
    "FORMAT_VERSION",
    "NetworkStates",
    "SUPPORTED_FORMATS",
    "build",
    "discriminator_shapes",
    "generator_shapes",
    "infer_discriminator_config",
    "infer_generator_config",
    "load",
    "load_encoder",
    "read_states",
    "save_encoder",
    "save_native",
    "sniff",
]
