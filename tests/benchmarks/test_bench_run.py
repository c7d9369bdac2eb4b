"""A whole ``gandapt-bench`` run at toy sizes: the JSON's schema, its ratios, the summary and plots.

Speed is never asserted: only that every number is there, consistent with the others, and that the
proofs (zero re-initialisation, parity with torch) hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from click.testing import CliRunner  # noqa: E402

from gandapt.benchmarks.cli import main  # noqa: E402
from gandapt.benchmarks.suite import SECTIONS, BenchOptions, run_bench  # noqa: E402
from gandapt.samples import data_path  # noqa: E402

TOY = dict(target_s=0.02, cell_budget=30.0, switches=40, frames_s=0.1, memory_counts=(1, 3, 10), max_copies=3,
           pipeline_frames=6, switch_every=(0, 1), peer_s=0.05, variant_models=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """One quick run on the 32 px test model (the shipped bundle for switching and the pipeline)."""
    out = tmp_path_factory.mktemp("bench")
    (out / "train_step_cpu.json").write_text(json.dumps({"benchmark": "base-gan train step"}))  # someone else's
    path = run_bench(BenchOptions(quick=True, threads=1, out=str(out), model=str(data_path("tiny_g32.pt")),
                                  resolutions=(), batches=(1, 2), progress=False, settings=TOY))
    data = json.loads(path.read_text())
    data["_path"] = path
    return data


def test_json_records_the_machine_and_settings(run: dict) -> None:
    assert run["benchmark"] == "gandapt-bench" and run["schema"] == 1 and run["mode"] == "quick"
    m = run["machine"]
    assert m["threads"] == 1 and m["kind"] in ("cpu", "cuda") and m["cpu"]
    assert m["versions"]["torch"] and m["versions"]["onnxruntime"] and m["versions"]["gandapt"]
    assert len(m["load_average_start"]) == 3 and m["date"].endswith("Z")
    assert set(run["sections"]) == set(SECTIONS) and run["wall_s"] > 0
    assert run["settings"]["batches"] == [1, 2] and run["options"]["model"].endswith("tiny_g32.pt")
    assert run["_path"].name.startswith("gandapt-bench-") and run["_path"].name.endswith(".json")


def test_latency_rows_are_complete_and_consistent(run: dict) -> None:
    sec = run["sections"]["latency"]
    floor = sec["floor"]["fp32"]
    rates = [floor["matmul_gflops"], floor["conv_gflops"], floor["ort_conv_gflops"]]
    assert floor["best_gflops"] == max(rates) > 0 and min(rates) > 0
    assert sec["stages"] == ["s", "in"] and [m["name"] for m in sec["models"]] == ["embedded"]
    flops = sec["models"][0]["flops"]["impl_total"]
    ok = [r for r in sec["rows"] if r["status"] == "ok"]
    paths = {(r["backend"], r["form"], r["precision"], r["batch"]) for r in ok}
    for want in [("torch-eager", "decomposed", "fp32", 1), ("torch-eager", "decomposed", "fp32", 2),
                 ("onnxruntime-cpu", "decomposed", "fp32", 1), ("onnxruntime-cpu", "decomposed", "fp32", 2),
                 ("onnxruntime-cpu", "decomposed", "fp16", 1), ("onnxruntime-cpu", "grouped", "fp32", 1),
                 ("torch-eager", "grouped", "fp32", 1)]:
        assert want in paths, want
    for r in ok:
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"], r
        assert r["fps"] == pytest.approx(r["batch"] * 1e3 / r["p50_ms"])
        assert r["floor_ms"] == pytest.approx(flops * r["batch"] / (floor["best_gflops"] * 1e9) * 1e3)
        assert r["x_floor"] == pytest.approx(r["p50_ms"] / r["floor_ms"])
        eager = next(e for e in ok if e["backend"] == "torch-eager" and e["form"] == "decomposed"
                     and e["batch"] == r["batch"])
        assert r["vs_eager"] == pytest.approx(eager["p50_ms"] / r["p50_ms"])
        assert r["max_abs_diff"] <= (2e-2 if r["precision"] == "fp16" else 1e-4), r  # same inputs as torch
    others = [r for r in sec["rows"] if r["status"] != "ok"]
    assert all(r["status"] in ("skipped", "unavailable") and r["reason"] for r in others)
    compiled = [r for r in others if r["backend"] == "torch-compile"]
    assert compiled and all(r["status"] == "skipped" for r in compiled)  # --quick records why
    plugin = [r for r in sec["rows"] if r["form"] == "plugin" and r["backend"] == "onnxruntime-cpu"]
    assert len(plugin) == 1 and plugin[0]["status"] == "unavailable"


def test_switching_proves_zero_reinitialisation(run: dict) -> None:
    sec = run["sections"]["switching"]
    assert sec["domains"] and sec["D"] * 4 == sec["vector_bytes"]
    for key in ("update", "switch", "blend"):
        assert 0 < sec[key]["p50_us"] <= sec[key]["p99_us"] and sec[key]["n"] == TOY["switches"]
    proof = sec["proof"]
    assert proof["zero_reinit"] and proof["instance_id_constant"] and proof["sessions_created"] == 0
    assert proof["switch_matches_fed"] and proof["switch_changes_output"] > 0
    t = sec["throughput"]
    assert t["ratio"] == pytest.approx(t["switch_every_frame_fps"] / t["no_switch_fps"])


def test_memory_rows_measured_then_computed(run: dict) -> None:
    sec = run["sections"]["memory"]
    assert [d["n"] for d in sec["domains"]] == [1, 3, 10] and all(d["measured"] for d in sec["domains"])
    assert [c["measured"] for c in sec["copies"]] == [True, True, False]  # copies measured up to 3
    assert sec["domains"][0]["memory_bytes"] == sec["D"] * 4
    top = sec["copies"][1]
    assert sec["copies"][2]["disk_bytes"] == int(top["disk_bytes"] * 10 / 3)
    assert sec["copy_over_domain"] > 10  # a copy of even the 32 px model dwarfs a domain vector
    ff = sec["ffhq1024"]
    assert ff["D"] > 0 and ff["rows"][0]["copies_bytes"] == ff["bytes_per_copy"] > 100 * 2**20


def test_pipeline_and_peer(run: dict) -> None:
    runs = run["sections"]["pipeline"]["runs"]
    assert [r["switch_every"] for r in runs] == [0, 1]
    for r in runs:
        assert r["frames_out"] == TOY["pipeline_frames"] and r["fps"] > 0 and r["instance_ids_constant"]
        assert {"synthesize", "encode"} <= set(r["stages_ms"])
    assert runs[1]["switches"] > 0
    peer = run["sections"]["peer"]["models"][0]
    p50 = {k: v["p50_ms"] for k, v in peer["stats"].items()}
    assert set(p50) == {"torch-eager-reference", "torch-eager-decomposed", "exported"}
    assert peer["ratio_reference"] == pytest.approx(p50["torch-eager-reference"] / p50["exported"])
    assert peer["ratio_decomposed"] == pytest.approx(p50["torch-eager-decomposed"] / p50["exported"])
    assert not peer["exported"]["backend"].startswith("torch")


def test_summary_and_plots_are_regenerated(run: dict) -> None:
    out = run["_path"].parent
    text = (out / "summary.md").read_text()
    for needle in ["# gandapt-bench results", "### Latency", "### Domain switching", "### Memory scaling",
                   "### Pipeline", "### Peer", run["_path"].name, "× floor"]:
        assert needle in text, needle
    assert "base-gan train step" not in text  # other JSON in the folder is left out
    pytest.importorskip("matplotlib")
    for name in ("latency_vs_resolution.png", "memory_vs_domains.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (out / "summary.md").unlink()
    res = CliRunner().invoke(main, ["--report-only", "--out", str(out), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert (out / "summary.md").read_text() == text


@pytest.mark.parametrize("args, needle", [
    (["--only", "latency,nope"], "unknown section"),
    (["--resolutions", "300"], "not a power of two"),
    (["--batches", "1,x"], "bad --batches"),
    (["--model", "missing.pt", "--only", "memory"], "missing.pt"),
    (["--bundle", ".", "--only", "switching"], "manifest.json"),
    (["--report-only", "--out", "no-such-folder"], "does not exist"),
    (["--report-only", "--out", "."], "holds no gandapt-bench results"),
    (["--model", "notes.txt", "--only", "memory"], "not a checkpoint gandapt can read"),
    (["--bundle", "no-such-bundle", "--only", "switching"], "bundle no-such-bundle not found"),
])
def test_user_errors_are_one_line(args: list, needle: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a model")
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and res.exception is None or isinstance(res.exception, SystemExit), res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0], res.output
