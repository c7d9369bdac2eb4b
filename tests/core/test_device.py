"""--device: a device the machine lacks fails with one line naming what to pass, before any work."""

import pytest
import torch
from click.testing import CliRunner

from gandapt.device import resolve_device
from gandapt.errors import GandaptError
from gandapt.samples import data_path

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a visible CUDA GPU")


def test_auto_and_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU ") == torch.device("cpu")
    assert resolve_device("") == resolve_device("auto")


@pytest.mark.parametrize("name, match", [("gpu", "unknown device 'gpu'; pass --device auto, cpu"),
                                         ("cuda:x", "unknown device"),
                                         ("meta", "gandapt runs on auto, cpu, cuda or cuda:N")])
def test_unknown_names(name, match):
    with pytest.raises(GandaptError, match=match):
        resolve_device(name)


@NO_CUDA
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu(name):
    with pytest.raises(GandaptError, match=rf"--device {name}: no CUDA GPU is visible .* pass --device cpu"):
        resolve_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.gpu
def test_cuda_index_past_the_last_gpu():
    n = torch.cuda.device_count()
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(GandaptError, match=f"has {n} GPU"):
        resolve_device(f"cuda:{n}")


@NO_CUDA
def test_train_and_generate_clis_refuse_cuda_in_one_line(tmp_path):
    from gandapt.cli.generate import main as generate
    from gandapt.trainer.cli import main as train

    model = str(data_path("tiny_g32.pt"))
    res = CliRunner().invoke(train, ["domain-mod", "--model", model, "--text", "sketch", "--out", str(tmp_path / "r"),
                                     "--device", "cuda", "--steps", "1"])
    assert res.exit_code == 1 and "no CUDA GPU is visible" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()  # refused before the run folder was made
    res = CliRunner().invoke(generate, [model, "--out", str(tmp_path / "g.png"), "--device", "cuda:1"])
    assert res.exit_code == 1 and "no CUDA GPU is visible" in res.output and not (tmp_path / "g.png").exists()
