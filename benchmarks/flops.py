"""Arithmetic per image from a generator's layer table, and the models the benchmarks run (no torch).

Two counts, both in FLOPs (2 per multiply-add):

- ``impl``: what gandapt's synthesis computes: an up-sampling modulated conv is a stride-2 transposed
  conv on the low-resolution input, then a depthwise 4×4 blur at the output resolution; the other
  convs and ToRGB run at their own resolution; plus the affines, the demodulation matmuls and the
  mapping MLP. This is the count the compute floor uses.
- ``nominal``: every 3×3 conv counted at its output resolution, the convention of the published
  "143 GMAC per 1024² image" figure for FFHQ config-f (reference/deploy.md §1); reported so the
  numbers can be compared with the literature.

Elementwise work (noise, bias, activation, modulation scaling) is not counted: it is memory-bound,
which is one reason measured latency stays a multiple of the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from gandapt.config import GeneratorConfig, channel_table, ffhq1024_config
from gandapt.errors import GandaptError

# Random-weight configs: NVlabs' published architectures at each resolution (stylegan2-ada-pytorch
# "paper256" and "paper512" cfg specs, and FFHQ config-f at 1024), 512-wide latents, 8 mapping layers.
RANDOM_CHANNEL_BASE = {256: 16384, 512: 32768, 1024: 32768}
QUICK_CHANNEL_BASE = 2048  # --quick: the same depth at a fraction of the width (labelled as such)


@dataclass(frozen=True)
class ModelSpec:
    """A model the latency benchmark runs.

    Attributes:
        name: short label used in tables and plots (``embedded``, ``random256``, ...).
        config: its generator config.
        path: checkpoint to load (None: random weights from ``seed``).
        note: how the config was chosen, for the JSON.
    """

    name: str
    config: GeneratorConfig
    path: Optional[str] = None
    note: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "path": self.path, "note": self.note, "config": self.config.to_dict(),
                "flops": synthesis_flops(self.config)}


def random_config(resolution: int, channel_base: Optional[int] = None, channel_max: int = 512,
                  latent: int = 512) -> GeneratorConfig:
    """A random-weight generator config at ``resolution`` (see :data:`RANDOM_CHANNEL_BASE`).

    Raises:
        GandaptError: a resolution that is not a power of two, or a bad channel base.
    """
    if resolution == 1024 and channel_base is None:
        return ffhq1024_config()
    base = channel_base or RANDOM_CHANNEL_BASE.get(resolution, 16384)
    if base < resolution:
        raise GandaptError(f"channel base {base} is below resolution {resolution}: the last blocks would have "
                           "no channels; use a larger --channel-base")
    return GeneratorConfig(z_dim=latent, w_dim=latent, img_resolution=resolution,
                           channels=channel_table(resolution, base, channel_max), mapping_layers=8)


def random_spec(resolution: int, quick: bool = False) -> ModelSpec:
    """The random-weight model at ``resolution``; ``quick`` narrows it to :data:`QUICK_CHANNEL_BASE`."""
    if quick:
        cfg = random_config(resolution, QUICK_CHANNEL_BASE, 256, latent=256)
        return ModelSpec(f"random{resolution}-narrow", cfg,
                         note=f"--quick: channel_base {QUICK_CHANNEL_BASE}, channel_max 256 (not a published config)")
    note = "FFHQ config-f" if resolution == 1024 else f"NVlabs paper{resolution} (channel_base {RANDOM_CHANNEL_BASE.get(resolution)})"
    return ModelSpec(f"random{resolution}", random_config(resolution), note=note)


def layer_table(config: GeneratorConfig) -> List[Dict[str, Any]]:
    """One row per modulated layer: name, resolution, channels, impl and nominal FLOPs per image."""
    rows = []
    w = config.w_dim
    for layer in config.layers():
        r, cin, cout, k = layer.resolution, layer.in_channels, layer.out_channels, layer.kernel_size
        affine = 2 * w * cin
        if layer.is_torgb:
            conv = nominal = 2 * r * r * cin * cout
            demod = 0
        else:
            nominal = 2 * r * r * cin * cout * k * k
            demod = 2 * cout * cin  # d = rsqrt(s² · ΣW²ᵀ): one small matmul per sample
            if layer.up:
                conv = 2 * (r // 2) ** 2 * cin * cout * k * k + 2 * r * r * cout * 16  # transposed conv + blur
            else:
                conv = nominal
        rows.append({"layer": layer.name, "resolution": r, "in": cin, "out": cout, "k": k, "up": layer.up,
                     "impl": conv + affine + demod, "nominal": nominal + affine + demod})
    return rows


def synthesis_flops(config: GeneratorConfig) -> Dict[str, float]:
    """FLOPs per image: ``{'impl', 'nominal', 'mapping', 'impl_total', 'nominal_total'}`` (floats).

    ``*_total`` add the mapping MLP (z → w once per image) to the synthesis counts.
    """
    rows = layer_table(config)
    mapping = 2 * (config.z_dim * config.w_dim + (config.mapping_layers - 1) * config.w_dim ** 2)
    impl = float(sum(r["impl"] for r in rows))
    nominal = float(sum(r["nominal"] for r in rows))
    return {"impl": impl, "nominal": nominal, "mapping": float(mapping),
            "impl_total": impl + mapping, "nominal_total": nominal + mapping}


def floor_ms(flops: float, gflops: float, batch: int = 1) -> Optional[float]:
    """Time of ``batch`` images at ``gflops`` (GFLOP/s): the compute floor in milliseconds."""
    if not gflops or gflops <= 0:
        return None
    return flops * batch / (gflops * 1e9) * 1e3


def parse_resolutions(text: str) -> Tuple[int, ...]:
    """``"256,512"`` → ``(256, 512)``; one-line errors for anything else."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            res = int(part)
        except ValueError:
            raise GandaptError(f"bad resolution {part!r}; give powers of two, e.g. --resolutions 256,512") from None
        if res < 8 or res & (res - 1):
            raise GandaptError(f"resolution {res} is not a power of two >= 8; e.g. --resolutions 256,512,1024")
        out.append(res)
    return tuple(out)
