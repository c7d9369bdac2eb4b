"""RunOptions: every trainer's options survive their JSON form and name what blocks a resume."""

import dataclasses
import json

import pytest

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
