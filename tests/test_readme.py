"""The README's first code block is what a newcomer runs and what CI runs: keep them true."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def first_block() -> list:
    text = (REPO / "README.md").read_text()
    match = re.search(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)
    assert match, "README.md has no code block"
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


def commands() -> tuple:
    install, tests = first_block()
    return install.split(" && "), tests


def ci_lines() -> list:
    return [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert text.index("```") < text.index("\n## "), "the commands must come before the first section"
    install, tests = commands()
    assert install[0] == "python3 -m venv .venv"
    assert install[-1].startswith(".venv/bin/gandapt-run ")
    assert "pytest" in tests


def test_ci_runs_the_readme_commands() -> None:
    install, tests = commands()
    lines = ci_lines()
    assert tests in lines, f".ci/run must run the README's test command verbatim: {tests}"
    # Same venv and the same install steps, in the same order.
    steps = install[:-1]
    found = [lines.index(step) if step in lines else -1 for step in steps]
    assert -1 not in found and found == sorted(found), f".ci/run must run {steps} in order"
    assert lines.index(tests) > found[-1]


def test_readme_main_job_runs(tmp_path) -> None:
    """The newcomer's first command: the shipped bundle on the sample clip, headless, into a video
    whose domain visibly changes every 15 frames (no camera, no GPU, no display)."""
    import os

    import numpy as np

    from gandapt.runtime.frames import read_video

    install, _ = commands()
    argv = shlex.split(install[-1])
    exe = Path(sys.executable).parent / Path(argv[0]).name  # this environment's console script
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([str(exe), *argv[1:]], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "FPS" in proc.stderr
    frames = read_video(tmp_path / argv[argv.index("--output") + 1])
    assert len(frames) == 90 and frames[0].shape == (256, 512, 3)  # the whole clip, [input | output]
    out = [f[:, 256:].astype(float) for f in frames]
    step = lambda i: np.abs(out[i] - out[i - 1]).mean()  # noqa: E731
    # at a domain switch (frame 15, same avatar on screen) the output jumps far more than between frames
    assert step(15) > 3 * max(step(14), step(16)), (step(14), step(15), step(16))


def test_readme_python_examples_run(tmp_path, monkeypatch) -> None:
    """Every ```python block in the README runs as written."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert blocks, "README.md has no python example"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
