"""gandapt-train table end to end on the tiny model: trains missing runs, caches metrics, renders."""

import json

import pytest
import torch

import gandapt
from gandapt.samples import data_path
from gandapt.trainer.adapters import table

MODEL = str(data_path("tiny_g32.pt"))


def test_table_trains_evaluates_and_renders(tmp_path, monkeypatch):
    import cv2

    data = tmp_path / "data"
    data.mkdir()
    G = gandapt.load(MODEL).G
    with torch.no_grad():
        x = G(torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(1)), truncation_psi=0.7)
    for i, a in enumerate(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()):
        cv2.imwrite(str(data / f"{i:08d}.png"), a[:, :, ::-1])
    monkeypatch.setattr(table, "HELD_OUT", 4)
    monkeypatch.setattr(table, "TARGETS", ("sketch",))
    monkeypatch.setattr(table, "ROWS", (table.Row("domain-mod", "domain-mod", {"steps": 2, "batch": 2}, shots=(1,)),
                                        table.Row("finetune", "finetune", {"steps": 1, "batch": 2}, shots=(1,))))
    monkeypatch.setattr(table, "prepare_targets", lambda d, w, targets=("sketch",): _prep(d, w))
    out = tmp_path / "results"
    md = table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4)
    text = md.read_text()
    assert "| domain-mod | sketch | 1 |" in text and "| unadapted | sketch | 0 |" in text and "N = 4" in text
    assert "Not trained yet" not in text
    results = json.loads((out / "adaptation.json").read_text())["results"]
    assert {r["method"] for r in results} == {"unadapted", "domain-mod", "finetune"}
    dm = next(r for r in results if r["method"] == "domain-mod")
    ft = next(r for r in results if r["method"] == "finetune")
    assert 0 < dm["bytes_per_domain"] < ft["bytes_per_domain"]
    assert cv2.imread(str(out / "adaptation.png")) is not None
    # a second call reuses runs and cached metrics
    stamp = (tmp_path / "work" / "runs" / "domain-mod-sketch-1shot" / "eval.json").stat().st_mtime_ns
    table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, train=False)
    assert (tmp_path / "work" / "runs" / "domain-mod-sketch-1shot" / "eval.json").stat().st_mtime_ns == stamp
    # a run that is missing is listed as such, not silently dropped
    import shutil
    shutil.rmtree(tmp_path / "work" / "runs" / "finetune-sketch-1shot")
    md = table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, train=False)
    assert "Not trained yet (the command above trains them): finetune-sketch-1shot." in md.read_text()


def _prep(data, work):
    from gandapt.trainer.data.transforms import transform_dataset

    dst = work / "targets" / "sketch"
    if not dst.exists():
        transform_dataset("sketch", data, dst, progress=False)
    return {"sketch": dst}


def test_plan_runs_every_one_shot_run_before_any_ten_shot_run():
    runs = table.plan({t: None for t in table.TARGETS})
    shots = [s for _, _, s in runs]
    assert shots == sorted(shots) and len(runs) == len(set((r.label, t, s) for r, t, s in runs))
    assert {(r.label, t) for r, t, s in runs if s == 1} == {(r.label, t) for r in table.ROWS for t in table.TARGETS}
    assert {t for _, t, s in runs if s == 10} == set(table.TEN_SHOT_TARGETS)
