"""What an export produces: modulated-conv form, precision, opset, batch and tolerances (no torch).

The tolerances compare onnxruntime (CPU EP) with the PyTorch fp32 model on the same inputs. A graph
passes when, for every output, ``max |onnx − torch| <= atol · max(1, max |torch|)``: relative to the
output's own scale, so a 64 px image in [-1, 1] and a W+ tensor of magnitude 3 use the same rule.

- fp32: ``atol`` 1e-4. Measured: the decomposed and grouped graphs differ from torch by 7e-7
  relative on the 64 px embedded config (img 4.9e-6 at scale 6.8; ws 3.5e-6) and 1e-6 to 4e-6
  relative on the tiny test models: float reassociation only, two orders of magnitude of margin.
- fp16: ``atol`` 1e-2 (1 % of the output's range, about 2.5 levels of an 8-bit image). Measured
  1.1e-3 relative on the embedded config (img 7.6e-3 at scale 6.8; ws 3.3e-3 at scale 5.7) and
  up to 2e-3 on the tiny models: weights and activations rounded to fp16; onnxruntime's CPU EP runs
  some kernels in fp32 behind inserted Casts, so re-measure on a GPU, where more runs in fp16.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from gandapt.errors import GandaptError

FORMS = ("decomposed", "grouped", "plugin")
PRECISIONS = ("fp32", "fp16")
NOISE_MODES = ("const",)  # per-call noise is not a graph input yet; 'none' = noise_strength 0

# The torch.export-based exporter translates through onnxscript's torchlib, written at opset 18: it
# cannot emit an older opset (Pad and the Reduce* ops take their axes as inputs from opset 18), and
# 18 is also what TensorRT 8.6 onwards parses. Higher opsets go through onnx's version converter.
MIN_OPSET = 18
DEFAULT_OPSET = 18

DEFAULT_TOLERANCES: Mapping[str, float] = {"fp32": 1e-4, "fp16": 1e-2}


def max_opset() -> int:
    """Newest default-domain opset the installed ``onnx`` knows."""
    import onnx.defs

    return int(onnx.defs.onnx_opset_version())


@dataclass(frozen=True)
class ExportSpec:
    """Settings of one export; everything here is constant within the exported graphs.

    Attributes:
        modconv: 'decomposed' (dynamic batch, constant conv weights; the default), 'grouped'
            (per-sample kernels through a grouped conv; fixed batch ``batch``) or 'plugin' (every synthesis
            conv one ``gandapt::ModulatedConv2d`` node for TensorRT, see plugins_trt/modulated_conv/README.md;
            dynamic batch; validated on CPU through onnxruntime-extensions).
        precision: 'fp32' or 'fp16'. fp16 graphs compute in float16 with float16 weights
            (explicitly typed, for TensorRT 11's strong typing) and keep float32 inputs and outputs,
            cast at the graph boundary, so every runtime feeds the same arrays.
        opset: default-domain ONNX opset, ``MIN_OPSET`` or newer.
        batch: the batch of a fixed-batch synthesis graph (grouped); decomposed synthesis, mapping and
            the encoder (every form) have a dynamic batch.
        trace_batch: batch used to trace dynamic-batch graphs (validation runs another one).
        validation_batch: batch of the onnxruntime check; must differ from ``trace_batch``.
        noise_mode: 'const' (the checkpoint's noise buffers, baked in as initializers).
        truncation_cutoff: truncate only the first this-many W+ rows (None: all rows); ψ itself is a
            per-sample graph input.
        tolerances: ``{precision: atol}`` override of :data:`DEFAULT_TOLERANCES` (see the module doc).
        seed: seed of the validation inputs.

    Raises:
        GandaptError: an unknown form or precision, plugin + fp16, an opset out of range, bad batches.
    """

    modconv: str = "decomposed"
    precision: str = "fp32"
    opset: int = DEFAULT_OPSET
    batch: int = 2
    trace_batch: int = 2
    validation_batch: int = 3
    noise_mode: str = "const"
    truncation_cutoff: Optional[int] = None
    tolerances: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.modconv not in FORMS:
            raise GandaptError(f"unknown modconv form {self.modconv!r}; use one of {', '.join(FORMS)}")
        if self.precision not in PRECISIONS:
            raise GandaptError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.modconv == "plugin" and self.precision == "fp16":
            raise GandaptError("the plugin form is exported in fp32 only (its CPU check, onnxruntime-extensions, has no "
                               "float16); export --precision fp32 and build an fp16 engine from it with TensorRT 10")
        if self.noise_mode not in NOISE_MODES:
            raise GandaptError(f"noise_mode {self.noise_mode!r} cannot be exported; use 'const'")
        check_opset(self.opset)
        for name in ("batch", "trace_batch", "validation_batch"):
            if int(getattr(self, name)) < 1:
                raise GandaptError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.validation_batch == self.trace_batch:
            raise GandaptError(f"validation_batch ({self.validation_batch}) must differ from trace_batch "
                               "so the dynamic batch axis is checked")
        if self.truncation_cutoff is not None and self.truncation_cutoff < 1:
            raise GandaptError(f"truncation_cutoff must be >= 1 or None, got {self.truncation_cutoff}")
        # Frozen dataclass: fill the precisions the caller left out with the defaults.
        object.__setattr__(self, "tolerances", {**DEFAULT_TOLERANCES, **dict(self.tolerances)})

    @property
    def dynamic_batch(self) -> bool:
        """True when synthesis takes any batch size (decomposed, plugin); False for a fixed-batch graph."""
        return self.modconv in ("decomposed", "plugin")

    def graph_batch(self, graph: str) -> Optional[int]:
        """Fixed batch of ``graph``, or None when dynamic (only synthesis has modconv: mapping and the
        encoder are always dynamic)."""
        return None if graph != "synthesis" or self.dynamic_batch else self.batch

    @property
    def atol(self) -> float:
        """Tolerance of this precision, relative to ``max(1, max |torch output|)``."""
        return float(self.tolerances[self.precision])


def check_opset(opset: Any) -> int:
    """Refuse an opset the exporter cannot write.

    Raises:
        GandaptError: below :data:`MIN_OPSET` (names why) or above what the installed onnx knows.
    """
    try:
        opset = int(opset)
    except (TypeError, ValueError):
        raise GandaptError(f"opset must be an integer, got {opset!r}") from None
    if opset < MIN_OPSET:
        raise GandaptError(
            f"opset {opset} is too old: the graphs need opset {MIN_OPSET} or newer (Pad and ReduceSum/ReduceMean "
            f"with axes as inputs; the torch.export-based exporter writes opset {MIN_OPSET}+); use --opset {MIN_OPSET}"
        )
    top = max_opset()
    if opset > top:
        raise GandaptError(f"opset {opset} is newer than the installed onnx supports ({top}); "
                           f"use --opset {DEFAULT_OPSET} or upgrade onnx")
    return opset
