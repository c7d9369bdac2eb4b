"""gandapt.benchmarks building blocks: FLOP counts, timing statistics, option checks (no speed asserted)."""

from __future__ import annotations

import numpy as np
import pytest

from gandapt.benchmarks.flops import (floor_ms, layer_table, parse_resolutions, random_config, random_spec,
                                      synthesis_flops)
from gandapt.benchmarks.timing import measure, measure_interleaved, ratio, summarize
from gandapt.config import GeneratorConfig, ffhq1024_config
from gandapt.errors import GandaptError


def test_ffhq_nominal_flops_match_the_published_figure() -> None:
    """Config-f counted the literature's way is 143.15 GMAC per 1024² image (reference/deploy.md §1)."""
    f = synthesis_flops(ffhq1024_config())
    gmac = f["nominal_total"] / 2 / 1e9
    assert abs(gmac - 143.15) / 143.15 < 0.02, gmac
    # gandapt computes up-sampling convs on the low-resolution input: fewer FLOPs than the nominal count.
    assert f["impl"] < f["nominal"] < 2 * f["impl"]
    assert f["impl_total"] == f["impl"] + f["mapping"]


def test_layer_table_follows_the_config() -> None:
    cfg = GeneratorConfig(z_dim=32, w_dim=32, img_resolution=32, channels=(64, 32, 32, 16), mapping_layers=2)
    rows = layer_table(cfg)
    assert [r["layer"] for r in rows] == [l.name for l in cfg.layers()]
    conv = next(r for r in rows if r["layer"] == "b8.conv1")  # 32 → 32 channels, 3×3 at 8 px, no up
    assert conv["nominal"] == conv["impl"] == 2 * 8 * 8 * 32 * 32 * 9 + 2 * 32 * 32 + 2 * 32 * 32
    up = next(r for r in rows if r["layer"] == "b8.conv0")
    assert up["up"] and up["impl"] < up["nominal"]
    assert synthesis_flops(cfg)["impl"] == sum(r["impl"] for r in rows)


def test_floor_and_configs() -> None:
    assert floor_ms(2e9, 1.0, batch=2) == pytest.approx(4000.0)  # 4 GFLOP at 1 GFLOP/s
    assert floor_ms(1e9, None) is None
    assert random_config(1024) == ffhq1024_config()
    assert random_config(256).channels == (512, 512, 512, 512, 256, 128, 64)
    narrow = random_spec(256, quick=True)
    assert narrow.name.endswith("narrow") and "quick" in narrow.note and max(narrow.config.channels) <= 256
    assert parse_resolutions("256, 512") == (256, 512)
    for bad in ("300", "abc", "4"):
        with pytest.raises(GandaptError, match="resolution"):
            parse_resolutions(bad)
    with pytest.raises(GandaptError, match="channel base"):
        random_config(512, channel_base=256)


def test_summarize_uses_the_median_of_repeats() -> None:
    ms = [1.0] * 10 + [100.0] * 10 + [1.0] * 10  # one disturbed stretch
    s = summarize(ms, batch=4, repeats=3)
    assert s["repeats"] == 3 and s["n"] == 30
    assert s["p50_ms"] == 1.0 and s["p99_ms"] == 1.0  # the middle group is outvoted
    assert s["fps"] == pytest.approx(4000.0)
    few = summarize([1.0, 2.0, 3.0], repeats=3)
    assert few["repeats"] == 1 and few["p50_ms"] == 2.0
    assert few["p50_ms"] <= few["p90_ms"] <= few["p99_ms"]
    with pytest.raises(ValueError):
        summarize([])


def test_measure_counts_calls_and_returns_the_first_output() -> None:
    calls = []

    def fn():
        calls.append(1)
        return len(calls)

    stats, first = measure(fn, batch=2, target_s=0.0, min_iters=4, max_iters=4, warmup_s=0.0)
    assert first == 1 and stats["n"] == 4 and stats["warmup"] == 1 and len(calls) == 5
    both = measure_interleaved({"a": lambda: None, "b": lambda: None}, target_s=0.0, min_iters=3, max_iters=3)
    assert set(both) == {"a", "b"} and both["a"]["n"] == both["b"]["n"] == 3
    assert ratio(4.0, 2.0) == 2.0 and ratio(None, 1.0) is None and ratio(1.0, 0.0) is None


def test_options_are_checked() -> None:
    from gandapt.benchmarks.suite import BenchOptions, mode_settings

    with pytest.raises(GandaptError, match="unknown section"):
        BenchOptions(only=("latency", "nope"))
    with pytest.raises(GandaptError, match="batches"):
        BenchOptions(batches=(0,))
    quick, full = mode_settings(BenchOptions(quick=True)), mode_settings(BenchOptions())
    assert quick["batches"] == (1, 4) and full["batches"] == (1, 4, 16)
    assert full["resolutions"] == (256, 512, 1024) and not quick["compile"] and full["compile"]
    assert mode_settings(BenchOptions(quick=True, batches=(2,), cell_budget=5))["batches"] == (2,)


def test_gpu_script_core_runs_eagerly_on_cpu_and_plugin_probe_answers() -> None:
    pytest.importorskip("torch")
    from gandapt.benchmarks.gpu import bench_config, plugin_kernel

    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=(16, 16, 8), mapping_layers=1)
    row = bench_config(cfg, "cpu", "fp32", cuda_graphs=False, target_s=0.01)
    assert row["status"] == "ok" and row["eager"]["n"] >= 3 and "cuda_graph" not in row
    probe = plugin_kernel()
    assert probe["status"] in ("ok", "unavailable", "failed")
    assert probe["status"] == "ok" or probe["reason"]


def test_gpu_script_without_cuda_is_one_line() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    from click.testing import CliRunner

    from gandapt.benchmarks.gpu import main

    res = CliRunner().invoke(main, ["--resolutions", "256"])
    assert res.exit_code == 1 and res.output.startswith("Error: no CUDA GPU"), res.output
    assert len(res.output.strip().splitlines()) == 1
