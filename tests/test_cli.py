"""Console scripts: help, and one-line user errors (inspect, run, export, bench)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import gandapt.samples
from gandapt.cli.errors import user_errors
from gandapt.cli.inspect import main as inspect_main
from gandapt.errors import GandaptError

BIN = Path(sys.executable).parent
SCRIPTS = ["gandapt", "gandapt-train", "gandapt-export", "gandapt-run", "gandapt-bench", "gandapt-inspect",
           "gandapt-generate"]


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = BIN / script
    if not exe.exists():
        pytest.fail(f"{exe} is missing; install the project first: pip install -e '.[dev]'")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out
    assert "Traceback" not in out, out
    assert proc.stdout == "", out
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    for needle in needles:
        assert needle in lines[0], out


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str, tmp_path: Path) -> None:
    proc = run(script, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Usage: {script} ")


def test_group_lists_and_runs_every_command(tmp_path: Path) -> None:
    out = run("gandapt", "--help", cwd=tmp_path).stdout
    for name in ["inspect", "generate", "train", "export", "run", "bench"]:
        assert f"\n  {name} " in out
        proc = run("gandapt", name, "--help", cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout.startswith(f"Usage: gandapt {name} "), proc.stderr
    assert run("gandapt", "--version", cwd=tmp_path).stdout.strip() == "gandapt, version 0.1.0"


@pytest.mark.parametrize("script,args,needle", [
    ("gandapt-bench", ("--only", "nope"), "nope"),
    ("gandapt", ("bench", "--only", "nope"), "nope"),
    ("gandapt-bench", ("--threads", "0"), "--threads"),
])
def test_bench_bad_options_are_one_line(script: str, args: tuple, needle: str, tmp_path: Path) -> None:
    proc = run(script, *args, "--out", str(tmp_path / "results"), cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: ") and needle in lines[-1], proc.stderr
    assert not (tmp_path / "results").exists()


def test_run_bundle_errors_say_what_to_pass(tmp_path: Path, monkeypatch) -> None:
    proc = run("gandapt", "run", "no-such-bundle", "--source", "latent", "--frames", "1", "--output", "x.mp4",
               cwd=tmp_path)
    assert_one_line_error(proc, 1, "no-such-bundle", "gandapt-export")
    import gandapt.samples
    from gandapt.errors import GandaptError
    from gandapt.runtime.cli import default_bundle

    def missing():
        raise GandaptError("no sample bundle in /x")

    monkeypatch.setattr(gandapt.samples, "bundle", missing)
    with pytest.raises(GandaptError, match="no BUNDLE given.*gandapt-export"):
        default_bundle()


def test_export_missing_model_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run("gandapt", "export", "m.pt", "--out", "b", cwd=tmp_path), 1, "m.pt")


@pytest.mark.parametrize("sub", ["base", "data", "fid", "encoder", "eval-encoder", "domain-mod", "stylespace", "genda",
                                 "finetune", "eval", "table", "expansion", "degan", "hyperdomainnet", "dynagan"])
def test_train_subcommands_have_help(sub: str, tmp_path: Path) -> None:
    proc = run("gandapt-train", sub, "--help", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith(f"Usage: gandapt-train {sub} "), proc.stderr


def test_train_base_user_errors_are_one_line(tmp_path: Path) -> None:
    proc = run("gandapt-train", "base", "--data", "missing", "--out", "run", "--steps", "1", cwd=tmp_path)
    assert_one_line_error(proc, 1, "missing does not exist")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"x")
    (tmp_path / "imgs").mkdir()
    import numpy as np
    from PIL import Image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    proc = run("gandapt-train", "base", "--data", "imgs", "--out", "run", "--steps", "1", cwd=tmp_path)
    assert_one_line_error(proc, 1, "already holds a run")


# ---- gandapt-inspect: user errors -----------------------------------------------------------

def test_inspect_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run("gandapt-inspect", "nope.pt", cwd=tmp_path), 1, "nope.pt does not exist")


def test_inspect_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.pt").touch()
    assert_one_line_error(run("gandapt-inspect", "empty.pt", cwd=tmp_path), 1, "empty.pt is empty")


def test_inspect_directory(tmp_path: Path) -> None:
    assert_one_line_error(run("gandapt-inspect", ".", cwd=tmp_path), 1, "is a directory")


@pytest.mark.parametrize("name, content", [
    ("notes.pt", b"these are not the weights you are looking for\n"),
    ("random.pkl", bytes(range(256)) * 4),
    ("fake.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}"),
])
def test_inspect_unknown_format(name: str, content: bytes, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(content)
    assert_one_line_error(run("gandapt-inspect", name, cwd=tmp_path), 1, name)


def test_inspect_a_truncated_pack_says_so(tmp_path: Path) -> None:
    (tmp_path / "cut.safetensors").write_bytes(gandapt.samples.data_path(gandapt.samples.PACK).read_bytes()[:20])
    assert_one_line_error(run("gandapt-inspect", "cut.safetensors", cwd=tmp_path), 1,
                          "cut.safetensors is not a gandapt domain pack (bad or truncated safetensors header)")


def test_user_errors_makes_one_line() -> None:
    @click.command()
    @click.argument("kind")
    @user_errors()
    def cmd(kind: str) -> None:
        if kind == "gandapt":
            raise GandaptError("first line\n  second line")
        if kind == "os":
            open("/no/such/file")
        raise RuntimeError("a bug keeps its traceback")

    runner = CliRunner()
    res = runner.invoke(cmd, ["gandapt"])
    assert (res.exit_code, res.output) == (1, "Error: first line second line\n")
    res = runner.invoke(cmd, ["os"])
    assert (res.exit_code, res.output) == (1, "Error: /no/such/file: no such file or directory\n")
    res = runner.invoke(cmd, ["bug"])
    assert isinstance(res.exception, RuntimeError)


# ---- gandapt-inspect on real files ----------------------------------------------------------

def _save_generator(path: Path, config, seed: int = 0) -> Path:
    import torch

    from gandapt.checkpoint import save_native
    from gandapt.generator import Generator

    torch.manual_seed(seed)
    save_native(path, Generator(config))
    return path


def _tiny_config():
    from gandapt.config import GeneratorConfig

    return GeneratorConfig(z_dim=32, w_dim=32, img_resolution=16, channels=(32, 32, 16), mapping_layers=2)


def test_inspect_ffhq1024_json(tmp_path: Path) -> None:
    """Acceptance (issue #2): a random FFHQ-1024 model reports the StyleSpace sizes of the papers."""
    from gandapt.config import ffhq1024_config

    path = _save_generator(tmp_path / "ffhq1024.pt", ffhq1024_config())
    res = CliRunner().invoke(inspect_main, [str(path), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)  # JSON only on stdout
    assert (report["stylespace_dim"], report["conv_in_dim"]) == (9088, 6048)
    assert (report["img_resolution"], report["num_ws"], report["z_dim"], report["w_dim"]) == (1024, 18, 512, 512)
    assert report["channels"]["4"] == 512 and report["channels"]["1024"] == 32
    p = report["params"]
    assert p["G_total"] == p["G_mapping"] + p["G_synthesis"] and p["D_total"] is None
    assert sum(report["domain_layout"]["stages"].values()) == report["domain_layout"]["size"]


def test_inspect_text_report(tmp_path: Path) -> None:
    path = _save_generator(tmp_path / "tiny.pt", _tiny_config())
    proc = run("gandapt-inspect", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for needle in ["checkpoint", "stylespace_dim", "conv_in_dim", "fingerprint", "G synthesis", "domain layout"]:
        assert needle in text
    from gandapt.cli.inspect import inspect_path

    report = inspect_path(path)
    assert f"{report['params']['G_total']:,}" in text and report["fingerprint"] in text


def _make_pack(path: Path, config, fingerprint):
    import numpy as np

    from gandapt.pack import Domain, DomainPack, save_pack

    first = config.layers()[0]
    domains = [
        Domain("sketch", {f"in_scale.{first.name}": np.full(first.in_channels, 1.5, np.float32)},
               {"method": "domain-modulation"}),
        Domain("plain"),
    ]
    save_pack(DomainPack(domains, config, fingerprint), path)
    return path


def test_inspect_pack_and_compatibility(tmp_path: Path) -> None:
    from gandapt.cli.inspect import inspect_path

    cfg = _tiny_config()
    model = _save_generator(tmp_path / "model.pt", cfg)
    other = _save_generator(tmp_path / "other.pt", cfg, seed=1)
    pack = _make_pack(tmp_path / "pack.safetensors", cfg, inspect_path(model)["fingerprint"])

    report = inspect_path(pack)
    assert report["kind"] == "pack" and report["stages"] == ["in"]
    assert report["domains"][0] == {"name": "sketch", "method": "domain-modulation", "stages": ["in"],
                                    "floats": cfg.layers()[0].in_channels}
    assert report["domains"][1]["floats"] == 0

    ok = run("gandapt-inspect", "pack.safetensors", "--model", "model.pt", cwd=tmp_path)
    assert ok.returncode == 0 and "with model model.pt: OK" in ok.stdout, ok.stderr
    bad = run("gandapt-inspect", "pack.safetensors", "--model", "other.pt", "--json", cwd=tmp_path)
    verdict = json.loads(bad.stdout)["compatibility"]
    assert bad.returncode == 1 and not verdict["compatible"] and "\n" not in verdict["message"]

    assert_one_line_error(run("gandapt-inspect", "model.pt", "--model", "model.pt", cwd=tmp_path), 1, "--model")


def test_inspect_pack_imports_no_torch(tmp_path: Path) -> None:
    cfg = _tiny_config()
    _make_pack(tmp_path / "pack.safetensors", cfg, None)
    code = ("import sys; from gandapt.cli.inspect import inspect_path; inspect_path('pack.safetensors'); "
            "assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_train_base_corrupt_images_skip_or_strict(tmp_path: Path) -> None:
    """A corrupt image is skipped with a one-line warning, or stops the run with --strict."""
    import numpy as np
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "imgs" / "bad.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(tmp_path / "imgs" / "big.png")
    args = ["--steps", "1", "--batch", "2", "--channels", "8,8,8", "--z-dim", "8", "--w-dim", "8",
            "--mapping-layers", "1", "--sample-every", "0", "--no-progress", "--resolution", "16"]
    proc = run("gandapt-train", "base", "--data", "imgs", "--out", "run", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert any("skipped 1 unreadable" in w for w in warnings) and any("resized" in w for w in warnings)
    assert "Traceback" not in proc.stderr
    proc = run("gandapt-train", "base", "--data", "imgs", "--out", "run2", "--strict", *args, cwd=tmp_path)
    assert_one_line_error(proc, 1, "bad.png is not a readable image")
