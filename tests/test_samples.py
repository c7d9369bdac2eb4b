"""The shipped sample files are exactly what their recipes in gandapt.samples.build make."""

import pytest

import gandapt
from gandapt.samples import data_path
from gandapt.samples.build import RECIPES, main


@pytest.mark.parametrize("name", [n for n in RECIPES if n.endswith(".pt")])
def test_sample_model_matches_its_recipe(name, tmp_path):
    main([name, "--out", str(tmp_path)])
    rebuilt, shipped = gandapt.load(tmp_path / name), gandapt.load(data_path(name))
    assert rebuilt.fingerprint == shipped.fingerprint
    assert rebuilt.config == shipped.config


def test_unknown_sample_is_refused():
    with pytest.raises(gandapt.GandaptError, match="no sample file"):
        data_path("nope.pt")
