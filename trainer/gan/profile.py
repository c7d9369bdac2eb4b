"""Time base-GAN training steps under different CPU settings, side by side (``python -m``).

Measures the median seconds per step (after warm-up) of the real training step on random data, so
each optimisation of the CPU path is a measured ratio, not a claim. Results go to JSON.

    python -m gandapt.trainer.gan.profile --steps 12 --out benchmarks/results/train_step_cpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from gandapt.trainer.gan.augment import diff_augment, parse_policy
from gandapt.trainer.gan.loop import build_networks, train_step
from gandapt.trainer.gan.options import BaseTrainOptions

VARIANTS = {
    # name: (option overrides, modconv form)
    "reference-like (NCHW, blur D)": (dict(channels_last=False, d_downsample="blur"), "decomposed"),
    "grouped modconv": (dict(channels_last=False, d_downsample="blur"), "grouped"),
    "channels_last": (dict(channels_last=True, d_downsample="blur"), "decomposed"),
    "avgpool D": (dict(channels_last=False, d_downsample="avgpool"), "decomposed"),
    "channels_last + avgpool D (default)": (dict(channels_last=True, d_downsample="avgpool"), "decomposed"),
}


def time_variant(options: BaseTrainOptions, form: str, resolution: int, steps: int, warmup: int = 3,
                 compile: bool = False) -> dict:
    """Median/p10/p90 seconds per training step (R1 every r1_interval steps, as in training).

    With ``compile`` the synthesis network and D run through ``torch.compile`` (inductor); R1 is then
    off, because inductor cannot differentiate twice, and the first (compiling) step is reported.
    """
    G, D = build_networks(options, resolution)
    G.synthesis.set_modconv_form(form)
    if options.channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    compile_s = None
    if compile:
        options = dataclasses.replace(options, r1_gamma=0.0)
        G.synthesis.forward = torch.compile(G.synthesis.forward)
        D.forward = torch.compile(D.forward)
    ratio = options.r1_interval / (options.r1_interval + 1)
    G_opt = torch.optim.Adam(G.parameters(), lr=options.g_lr, betas=(0.0, options.beta2))
    D_opt = torch.optim.Adam(D.parameters(), lr=options.d_lr * ratio, betas=(0.0, options.beta2**ratio))
    gen = torch.Generator().manual_seed(0)
    policy = parse_policy(options.augment)
    augment = (lambda x: diff_augment(x, policy, gen)) if policy else (lambda x: x)
    times, r1_times = [], []
    for i in range(warmup + steps):
        real = torch.rand(options.batch, 3, resolution, resolution, generator=gen) * 2 - 1
        if options.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        do_r1 = i % options.r1_interval == 0
        t0 = time.perf_counter()
        train_step(G, D, G_opt, D_opt, real, options, augment, gen, do_r1)
        dt = time.perf_counter() - t0
        if i == 0 and compile:
            compile_s = dt
        if i >= warmup:
            (r1_times if do_r1 else times).append(dt)
    q = statistics.quantiles(times, n=10)
    return {"median_s": statistics.median(times), "p10_s": q[0], "p90_s": q[-1], "steps": len(times),
            "r1_step_s": statistics.median(r1_times) if r1_times else None,
            "img_per_s": options.batch / statistics.median(times), "first_step_s": compile_s}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--only", default=None, help="comma list of variant names (substring match)")
    p.add_argument("--compile", action="store_true", help="also time the default variant under torch.compile")
    p.add_argument("--out", default=None, help="write the JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = BaseTrainOptions(data="-", out="-", batch=args.batch, progress=False)
    results = {}
    for name, (overrides, form) in VARIANTS.items():
        if args.only and not any(s.strip() in name for s in args.only.split(",")):
            continue
        opts = dataclasses.replace(base, **overrides)
        results[name] = time_variant(opts, form, args.resolution, args.steps)
        print(f"{name:40s} {results[name]['median_s']:.3f} s/step  {results[name]['img_per_s']:.1f} img/s", flush=True)
    if args.compile:
        name = "default + torch.compile (no R1)"
        opts = dataclasses.replace(base, **VARIANTS["channels_last + avgpool D (default)"][0])
        results[name] = time_variant(opts, "decomposed", args.resolution, args.steps, compile=True)
        print(f"{name:40s} {results[name]['median_s']:.3f} s/step  {results[name]['img_per_s']:.1f} img/s "
              f"(first step {results[name]['first_step_s']:.0f} s)", flush=True)
    first = next(iter(results.values()))["median_s"]
    for r in results.values():
        r["speedup_vs_first"] = first / r["median_s"]
    report = {"benchmark": "base-gan train step", "resolution": args.resolution, "batch": args.batch,
              "channels": list(base.resolved_channels(args.resolution)), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
              "date": time.strftime("%Y-%m-%d"), "results": results}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
