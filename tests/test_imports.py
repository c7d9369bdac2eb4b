"""The edge-box promise: the package root and the runtime import no torch (DESIGN §1)."""

from __future__ import annotations

import subprocess
import sys

import pytest

TORCH_FREE = [
    "import gandapt, gandapt.runtime, gandapt.runtime.cli",
    # the CLI layers a torch-free `gandapt run` passes through
    "import gandapt.cli.main, gandapt.cli.errors, gandapt.cli.inspect; gandapt.cli.main.cli.get_command(None, 'run')",
    # lazily exposed names that are numpy-only
    "import gandapt; gandapt.GandaptError, gandapt.DomainLayout",
    # camera-frame preprocessing shared with the encoder evaluation
    "import gandapt.runtime.crop, gandapt.runtime.frames, gandapt.runtime.sources, gandapt.runtime.sinks",
    "import gandapt.runtime.display, gandapt.runtime.overlay, gandapt.runtime.pipeline, gandapt.runtime.backends",
    "import gandapt.samples, gandapt.samples.render_clip; assert callable(gandapt.samples.clip)",
]


@pytest.mark.parametrize("code", TORCH_FREE)
def test_imports_no_torch(code: str, tmp_path) -> None:
    check = code + "; import sys; assert 'torch' not in sys.modules, 'torch was imported'"
    # Run outside the checkout so the installed package is what gets imported.
    proc = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_version_and_lazy_names() -> None:
    import gandapt
    from gandapt.errors import GandaptError

    assert gandapt.__version__ == "0.1.0"
    assert gandapt.GandaptError is GandaptError
    assert "load" in dir(gandapt) and "DomainLayout" in dir(gandapt)
    with pytest.raises(AttributeError):
        gandapt.no_such_name
