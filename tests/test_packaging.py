"""The wheel holds every folder of the design card under ``gandapt.*`` and works outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Repository folder -> import name (setup.cfg's package_dir).
ROOTS = {"gandapt": "gandapt", "trainer": "gandapt.trainer", "export": "gandapt.export",
         "runtime": "gandapt.runtime", "plugins_trt": "gandapt.plugins_trt",
         "benchmarks": "gandapt.benchmarks", "samples": "gandapt.samples"}
SCRIPTS = ["gandapt", "gandapt-train", "gandapt-export", "gandapt-run", "gandapt-bench", "gandapt-inspect",
           "gandapt-generate"]
_JUNK = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")


def source_packages() -> set:
    """Import names of every folder with an ``__init__.py`` under the package roots."""
    names = set()
    for folder, name in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            names.add(".".join((name, *rel)))
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy: an in-tree build leaves build/lib behind, which can leak stale files into
    # later wheels and races with the editable install's egg-info.
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=_JUNK)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"), str(src)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (whl,) = (tmp / "dist").glob("gandapt-*.whl")
    return whl


def test_wheel_has_every_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        files = zf.namelist()
    in_wheel = {os.path.dirname(f).replace("/", ".") for f in files if f.endswith("/__init__.py")}
    missing = source_packages() - in_wheel
    assert not missing, f"add these to [options] packages in setup.cfg: {sorted(missing)}"
    entry_points = next(f for f in files if f.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(entry_points).decode()
    for script in SCRIPTS:
        assert f"\n{script} = " in text
    data = REPO / "samples" / "data"
    for f in (data.rglob("*") if data.is_dir() else []):  # the bundle is a folder of files
        if f.is_file():
            assert f"gandapt/samples/data/{f.relative_to(data).as_posix()}" in files


def test_wheel_installs_and_imports_outside_checkout(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # A venv made from a venv sees the *base* interpreter's site-packages, not ours; point it at ours
    # for the dependencies (torch, click, ...). A plain path line does not run our .pth files, so the
    # editable install of this checkout stays out and the wheel is what gets imported.
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
                    "--quiet", str(wheel)], check=True, capture_output=True)

    imports = ", ".join(sorted(source_packages()))
    code = (f"import {imports}; import gandapt, sys; print(gandapt.__file__); "
            "print(all(m.__file__.startswith(sys.prefix) for n, m in sys.modules.items() if n.startswith('gandapt')))")
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = subprocess.run([str(py), "-c", code], cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    where, all_inside = proc.stdout.split()
    assert Path(where).is_relative_to(venv) and all_inside == "True", proc.stdout

    proc = subprocess.run([str(venv / "bin" / "gandapt-inspect"), "--help"], cwd=work, capture_output=True,
                          text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: gandapt-inspect"), proc.stderr


def test_checkout_imports_from_repo_root() -> None:
    """From the repository root, ``gandapt`` is the checkout's folder; its siblings must resolve too."""
    code = "import gandapt.trainer, gandapt.runtime.cli, gandapt.samples; print(gandapt.trainer.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == REPO / "trainer" / "__init__.py"
