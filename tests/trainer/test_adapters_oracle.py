"""The paired oracle: a method's entries trained on the paired error itself bound what its losses can reach."""

import json

import pytest
from click.testing import CliRunner

from gandapt.errors import GandaptError
from gandapt.samples import data_path
from gandapt.trainer.adapters.oracle import paired_oracle
from gandapt.trainer.cli import main

MODEL = str(data_path("tiny_g32.pt"))


def test_oracle_lowers_the_paired_error_it_trains_on():
    losses = []
    r = paired_oracle(MODEL, "colorshift", "domain-mod", steps=30, paired_n=16, on_step=lambda i, l: losses.append(l))
    assert len(losses) == 30 and losses[-1] < losses[0]
    # measured on the evaluation latents, which it never trained on
    assert r["paired_l1"] < 0.9 * r["unadapted_l1"] and r["method"] == "domain-mod" and r["trainable_params"] > 0


def test_oracle_refuses_finetune_an_unknown_transform_and_variant():
    with pytest.raises(GandaptError, match="layout method"):
        paired_oracle(MODEL, "ink", "finetune", steps=1)
    with pytest.raises(GandaptError, match="unknown transform 'nope'"):
        paired_oracle(MODEL, "nope", steps=1)
    with pytest.raises(GandaptError, match="no variant 'x'"):
        paired_oracle(MODEL, "ink", "stylespace", variant="x", steps=1)
    with pytest.raises(GandaptError, match="--lr must be a finite number > 0, got -1"):
        paired_oracle(MODEL, "ink", lr=-1.0, steps=1)


def test_oracle_cli_json_and_one_line_errors():
    res = CliRunner().invoke(main, ["oracle", MODEL, "--transform", "ink", "--method", "stylespace", "--steps", "2",
                                    "--paired-n", "4", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["method"] == "stylespace" and out["variant"] == "conv" and out["paired_n"] == 4
    res = CliRunner().invoke(main, ["oracle", MODEL, "--transform", "nope"])
    assert res.exit_code == 1 and "unknown transform 'nope'" in res.output and "Traceback" not in res.output
