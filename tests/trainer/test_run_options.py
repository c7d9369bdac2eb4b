"""RunOptions: every trainer's options survive their JSON form and name what blocks a resume."""

import dataclasses
import json

import pytest

from gandapt.errors import GandaptError

from gandapt.trainer.adapters.options import AdapterTrainOptions
from gandapt.trainer.degan.options import DeganOptions
from gandapt.trainer.encoder.options import EncoderTrainOptions
from gandapt.trainer.expansion.options import ExpansionOptions
from gandapt.trainer.gan.options import BaseTrainOptions
from gandapt.trainer.multidomain.options import MultiDomainTrainOptions

CASES = [
    AdapterTrainOptions(method="domain-mod", model="m.pt", out="o", target="t"),
    MultiDomainTrainOptions(method="hyperdomainnet", model="m.pt", out="o", targets=("a", "b")),
    ExpansionOptions(model="m.pt", out="o", targets=("a", "b")),
    DeganOptions(model="m.pt", out="o", data="d"),
    EncoderTrainOptions(model="m.pt", data="d", out="o"),
    BaseTrainOptions(data="d", out="o"),
]


@pytest.mark.parametrize("opts", CASES, ids=lambda o: type(o).__name__)
def test_json_round_trip_and_resume_check(opts):
    d = json.loads(json.dumps(opts.to_dict()))             # what training_options.json holds
    assert type(opts).from_dict({**d, "from_a_newer_version": 1}) == opts
    assert not any(isinstance(v, tuple) for v in opts.to_dict().values())
    assert opts.incompatible_with(dataclasses.replace(opts, out="elsewhere")) == ()
    field = "model" if hasattr(opts, "model") else "data"   # the base GAN trainer has no base model
    assert opts.incompatible_with(dataclasses.replace(opts, **{field: "other"})) == (field,)
    assert "resumable" not in {f.name for f in dataclasses.fields(opts)}


@pytest.mark.parametrize("opts", CASES, ids=lambda o: type(o).__name__)
@pytest.mark.parametrize("value", [-1.0, 0.0, float("nan"), float("inf")])
def test_a_rate_that_cannot_train_is_refused_with_its_flag(opts, value):
    name = "g_lr" if hasattr(opts, "g_lr") else "lr"
    with pytest.raises(GandaptError, match=f"--{name.replace('_', '-')} must be a finite number > 0, got {value}"):
        dataclasses.replace(opts, **{name: value})


@pytest.mark.parametrize("opts", CASES, ids=lambda o: type(o).__name__)
def test_negative_loss_weights_and_bad_sizes_are_refused(opts):
    weight = next(f.name for f in dataclasses.fields(opts) if f.name.startswith("lambda_")) \
        if any(f.name.startswith("lambda_") for f in dataclasses.fields(opts)) else "r1_gamma"
    with pytest.raises(GandaptError, match=f"--{weight.replace('_', '-')} must be a finite number >= 0"):
        dataclasses.replace(opts, **{weight: -0.5})
    with pytest.raises(GandaptError, match="--checkpoint-minutes must be a finite number >= 0"):
        dataclasses.replace(opts, checkpoint_minutes=-1)
    dataclasses.replace(opts, checkpoint_minutes=0)  # 0: a checkpoint after every step
    if hasattr(opts, "channels"):
        with pytest.raises(GandaptError, match=r"--channels must be a finite number > 0, got \(0, 0"):
            dataclasses.replace(opts, channels=(0, 0, 0, 0))
