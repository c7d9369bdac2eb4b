"""gandapt-train table end to end on the tiny model: trains missing runs, caches metrics, renders."""

import json

import pytest
import torch

import gandapt
from gandapt.errors import GandaptError
from gandapt.samples import data_path
from gandapt.trainer.adapters import table
from gandapt.trainer.adapters import table_multi as multi

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
    monkeypatch.setattr(table, "ROWS", (table.Row("domain-mod", "domain-mod", {"steps": 2, "batch": 2, "lr": 0.004}, shots=(1,)),
                                        table.Row("finetune", "finetune", {"steps": 1, "batch": 2}, shots=(1,))))
    monkeypatch.setattr(table, "prepare_targets", lambda d, w, targets=("sketch",): _prep(d, w, targets))
    monkeypatch.setattr(multi, "MULTI_ROWS", ())
    monkeypatch.setattr(multi, "HELD_OUT_TARGETS", ())
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
    # each row states the learning rate it was trained with: the row's own, else the method's default
    assert dm["lr"] == 0.004 and ft["lr"] == 0.002
    assert "| domain-mod | sketch | 1 | 2 | 0.004 |" in text
    # and the CPU threads it trained with (build_table's default: torch's, shown as "all")
    assert dm["threads"] == ft["threads"] == "all" and "| train s | threads |" in text
    assert cv2.imread(str(out / "adaptation.png")) is not None
    # a second call reuses runs and cached metrics
    stamp = (tmp_path / "work" / "runs" / "domain-mod-sketch-1shot" / "eval.json").stat().st_mtime_ns
    table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, train=False)
    assert (tmp_path / "work" / "runs" / "domain-mod-sketch-1shot" / "eval.json").stat().st_mtime_ns == stamp
    # --only retrains one row (its options changed) and carries every other row over from adaptation.json as it was
    import shutil

    before = json.loads((out / "adaptation.json").read_text())["results"]
    figure = (out / "adaptation.png").stat().st_mtime_ns
    shutil.move(tmp_path / "work" / "runs" / "finetune-sketch-1shot", tmp_path / "finetune-away")  # not needed
    monkeypatch.setattr(table, "ROWS", (table.Row("domain-mod", "domain-mod", {"steps": 3, "batch": 2, "lr": 0.004},
                                                  shots=(1,)),) + table.ROWS[1:])
    md = table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, only=("domain-mod",))
    after = json.loads((out / "adaptation.json").read_text())
    assert [(r["method"], r["target"]) for r in after["results"]] == [(r["method"], r["target"]) for r in before]
    assert next(r for r in after["results"] if r["method"] == "domain-mod")["steps"] == 3
    assert next(r for r in after["results"] if r["method"] == "finetune") == ft
    assert after["meta"]["updated"] == ["domain-mod"] and after["meta"]["carried"] == ["finetune"]
    assert "Updated with `--only`: the domain-mod rows" in md.read_text()
    assert (out / "adaptation.png").stat().st_mtime_ns == figure  # a run it shows is missing: left as it was
    assert "`adaptation.png` was not redrawn" in md.read_text()
    with pytest.raises(GandaptError, match="--only nope: no such row"):
        table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, only=("nope",))
    with pytest.raises(GandaptError, match="which does not exist"):
        table.build_table(MODEL, str(data), str(tmp_path / "work"), str(tmp_path / "empty"), n_fid=4, paired_n=4,
                          only=("domain-mod",))
    with pytest.raises(GandaptError, match="cannot stand beside these"):
        table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=5, paired_n=4, only=("domain-mod",))
    for broken in ({**after, "results": {"a": 1}}, {**after, "results": [{"target": "sketch"}]},
                   {**after, "results": [{**after["results"][0], "method": "gone"}]}):
        (out / "adaptation.json").write_text(json.dumps(broken))
        with pytest.raises(GandaptError, match="is no results table of gandapt-train table"):
            table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4,
                              only=("domain-mod",))
    stray = {**after, "results": after["results"] + [{**ft, "target": "neon"}]}
    (out / "adaptation.json").write_text(json.dumps(stray))
    with pytest.raises(GandaptError, match="targets this table no longer has"):
        table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, only=("domain-mod",))
    (out / "adaptation.json").write_text(json.dumps(after))
    tampered = {**after, "results": [{**r, "unadapted_l1": r["unadapted_l1"] + 0.01} if r["method"] == "finetune" else r
                                     for r in after["results"]]}
    (out / "adaptation.json").write_text(json.dumps(tampered))
    with pytest.raises(GandaptError, match="the model, transforms or code differ"):
        table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, only=("domain-mod",))
    assert after["meta"]["unadapted_fid_drift"] == {"sketch": 0.0} and "FID measured now" not in md.read_text()
    moved = {**after, "results": [{**r, "fid": r["fid"] - 2.0} if r["method"] == "unadapted" else r
                                  for r in after["results"]]}
    (out / "adaptation.json").write_text(json.dumps(moved))  # an FID that moved is stated, not hidden
    md = table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, only=("domain-mod",))
    assert "FID measured now differs from the carried run's by up to 2.0" in md.read_text()
    # carried rows that trained on other target images are refused before any training
    current = json.loads((out / "adaptation.json").read_text())
    assert current["meta"]["targets_sha"] == table.targets_fingerprint({"sketch": tmp_path / "work" / "targets" / "sketch"})
    other = {**current, "meta": {**current["meta"], "targets_sha": {"sketch": "0" * 16}}}
    (out / "adaptation.json").write_text(json.dumps(other))
    with pytest.raises(GandaptError, match="target images of sketch differ"):
        table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, only=("domain-mod",))
    # a table that records none cannot be checked: carried, said so, and the new table stays unverifiable
    (out / "adaptation.json").write_text(json.dumps({**current, "meta": {k: v for k, v in current["meta"].items()
                                                                         if k != "targets_sha"}}))
    md = table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, only=("domain-mod",))
    assert "records no fingerprint of its target images" in md.read_text()
    assert json.loads((out / "adaptation.json").read_text())["meta"]["targets_sha"] is None
    (out / "adaptation.json").write_text(json.dumps(current))
    shutil.move(tmp_path / "finetune-away", tmp_path / "work" / "runs" / "finetune-sketch-1shot")
    md = table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, only=("domain-mod",))
    assert (out / "adaptation.png").stat().st_mtime_ns != figure  # every run it shows is there: redrawn
    assert "`adaptation.png` was redrawn" in md.read_text()
    # a run that is missing is listed as such, not silently dropped
    shutil.rmtree(tmp_path / "work" / "runs" / "finetune-sketch-1shot")
    md = table.build_table(MODEL, str(data), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4, train=False)
    assert "Not trained yet (the command above trains them): finetune-sketch-1shot." in md.read_text()


def _prep(data, work, targets=("sketch",)):
    from gandapt.trainer.data.transforms import transform_dataset

    out = {}
    for name in targets:
        dst = work / "targets" / name
        if not dst.exists():
            transform_dataset(name, data, dst, progress=False)
        out[name] = dst
    return out


def _avatars(folder, n=6):
    import cv2

    folder.mkdir()
    G = gandapt.load(MODEL).G
    with torch.no_grad():
        x = G(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1)), truncation_psi=0.7)
    for i, a in enumerate(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()):
        cv2.imwrite(str(folder / f"{i:08d}.png"), a[:, :, ::-1])


def test_table_multi_domain_rows_held_out_domains_and_cost(tiny_encoder_files, tmp_path, monkeypatch):
    """Each multi-domain method trains one model over every target; hyperdomainnet and degan also make
    domains for a held-out target; rows, the cost section and the figure cover them."""
    import cv2

    from gandapt.trainer.adapters import evaluate

    qd = evaluate.quality_diversity_of  # 64 VGG samples per domain is most of this test's time; 4 suffice
    monkeypatch.setattr(evaluate, "quality_diversity_of", lambda G_d, emb, t, n=64, **kw: qd(G_d, emb, t, n=4, **kw))
    _avatars(tmp_path / "data")
    monkeypatch.setattr(table, "HELD_OUT", 4)
    monkeypatch.setattr(table, "TARGETS", ("sketch", "ink"))
    monkeypatch.setattr(table, "ROWS", (table.Row("domain-mod", "domain-mod", {"steps": 1, "batch": 2, "n_source": 2},
                                                  shots=(1,)),))
    monkeypatch.setattr(table, "prepare_targets", lambda d, w, targets=("sketch", "ink"): _prep(d, w, targets))
    monkeypatch.setattr(multi, "HELD_OUT_TARGETS", ("colorshift",))
    monkeypatch.setattr(multi, "DEGAN_IMAGES_PER_TARGET", 2)
    tiny = {"steps": 2, "batch": 2, "n_source": 2}  # n_source: the VGG passes of the source mean dominate
    monkeypatch.setattr(multi, "MULTI_ROWS", (
        multi.MultiRow("hyperdomainnet", "hyperdomainnet", {**tiny, "hidden": 16}, held_out=True),
        multi.MultiRow("dynagan", "dynagan", {**tiny, "hidden": 16}),
        multi.MultiRow("expansion", "expansion", {**tiny, "basis_samples": 256, "dormant_ratio": 0.6}),
        multi.MultiRow("degan", "degan", {"steps": 2, "domains_per_step": 2, "latents_per_domain": 1, "n_source": 2,
                                          "channels": (4, 8, 8, 8), "hidden": 16}, held_out=True)))
    out = tmp_path / "results"
    md = table.build_table(MODEL, str(tmp_path / "data"), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4,
                           id_encoder=str(tiny_encoder_files[1]))
    text = md.read_text()
    results = json.loads((out / "adaptation.json").read_text())["results"]
    got = {(r["method"], r["target"]) for r in results}
    for m in ("hyperdomainnet", "dynagan", "expansion", "degan"):
        assert {(m, "sketch"), (m, "ink")} <= got
    assert ("hyperdomainnet", "colorshift") in got and ("degan", "colorshift") in got
    assert ("dynagan", "colorshift") not in got and ("expansion", "colorshift") not in got
    assert ("unadapted", "colorshift") in got
    assert all(r["lr"] > 0 and r["threads"] for r in results if r["method"] != "unadapted")
    held = [r for r in results if r["target"] == "colorshift"]
    assert held[0]["method"] == "unadapted" and all(r["held_out"] for r in held)
    assert all(r["paired_l1"] > 0 and r["bytes_per_domain"] > 0 for r in results if r["method"] != "unadapted")
    assert "| hyperdomainnet | colorshift (held out) | 1 |" in text
    assert "## One model for N domains vs N single-domain models" in text and "| 2 × domain-mod | 2 |" in text
    assert "| expansion (one model) | 2 |" in text and "Not trained yet" not in text
    assert cv2.imread(str(out / "adaptation.png")) is not None
    # expansion's paired error is measured against the original base's T(G(w)), like every other row
    exp = next(r for r in results if r["method"] == "expansion" and r["target"] == "sketch")
    base = next(r for r in results if r["method"] == "unadapted" and r["target"] == "sketch")
    assert exp["unadapted_l1"] == pytest.approx(base["paired_l1"])
    # a second call finds every run current (tuple options survive the JSON round trip) and retrains nothing
    runs = sorted((tmp_path / "work" / "runs").glob("*-multi-1shot/model.pt"))
    stamps = [f.stat().st_mtime_ns for f in runs]
    table.build_table(MODEL, str(tmp_path / "data"), str(tmp_path / "work"), str(out), n_fid=4, paired_n=4,
                      id_encoder=str(tiny_encoder_files[1]))
    assert len(runs) == 4 and [f.stat().st_mtime_ns for f in runs] == stamps


def test_plan_runs_every_one_shot_run_before_any_ten_shot_run():
    runs = table.plan({t: None for t in table.TARGETS})
    shots = [s for _, _, s in runs]
    assert shots == sorted(shots) and len(runs) == len(set((r.label, t, s) for r, t, s in runs))
    assert {(r.label, t) for r, t, s in runs if s == 1} == {(r.label, t) for r in table.ROWS for t in table.TARGETS}
    assert {t for _, t, s in runs if s == 10} == set(table.TEN_SHOT_TARGETS)


def test_a_missing_model_or_data_fails_before_any_run(tmp_path, capsys):
    from gandapt.errors import GandaptError

    with pytest.raises(GandaptError, match="--model .*missing.pt is not a file; give the base model"):
        table.build_table(str(tmp_path / "missing.pt"), str(tmp_path), str(tmp_path / "work"), str(tmp_path / "out"))
    with pytest.raises(GandaptError, match="is not a folder; give the avatar set"):
        table.build_table(str(data_path("tiny_g32.pt")), str(tmp_path / "no-data"), str(tmp_path / "work"),
                          str(tmp_path / "out"))
    assert "training" not in capsys.readouterr().out and not (tmp_path / "work").exists()


def test_a_run_saved_before_an_option_existed_is_not_stale(tmp_path):
    from gandapt.trainer.multidomain.options import MultiDomainTrainOptions

    folders = [tmp_path / "a", tmp_path / "b"]
    opts = MultiDomainTrainOptions(method="dynagan", model="m.pt", out=str(tmp_path), targets=tuple(map(str, folders)))
    saved = opts.resolved().to_dict()
    del saved["contrast_space"]  # written by a version without the option: it trained with the default
    (tmp_path / "training_options.json").write_text(json.dumps(saved))
    assert not table._stale(tmp_path, opts)
    assert table._stale(tmp_path, MultiDomainTrainOptions(**{**opts.to_dict(), "contrast_space": "direction"}))
    assert table._stale(tmp_path, MultiDomainTrainOptions(**{**opts.to_dict(), "lr": 1e-4}))
    (tmp_path / "training_options.json").write_text(json.dumps({**saved, "method": "nope"}))
    assert table._stale(tmp_path, opts)  # unreadable as these options: retrain


def test_the_table_encoders_reach_dynagan_only(tmp_path):
    seen = {"sketch": tmp_path / "sketch", "ink": tmp_path / "ink"}
    rows = {r.method: r for r in multi.MULTI_ROWS}
    dyn = multi._options(rows["dynagan"], "m.pt", tmp_path / "d", tmp_path, seen, {}, None, "enc.pt", "id.pt")
    hdn = multi._options(rows["hyperdomainnet"], "m.pt", tmp_path / "h", tmp_path, seen, {}, None, "enc.pt", "id.pt")
    assert dyn.encoder == "enc.pt" and hdn.encoder is None
    assert dyn.id_encoder == "id.pt" and dyn.resolved().lambda_id == 3.0 and hdn.id_encoder is None
    assert multi._options(rows["dynagan"], "m.pt", tmp_path / "d", tmp_path, seen, {}, None, None, "id.pt").encoder is None
    with pytest.raises(GandaptError, match="needs an identity network"):  # the row's identity loss needs one
        multi._options(rows["dynagan"], "m.pt", tmp_path / "d", tmp_path, seen, {}, None)


def test_the_dynagan_identity_encoder_defaults_to_the_shipped_one_for_the_shipped_model(tiny_encoder_files):
    from pathlib import Path

    from gandapt import samples

    assert multi.identity_encoder(str(samples.base_model()), None) == str(samples.encoder())
    _, good, foreign = tiny_encoder_files
    assert multi.identity_encoder(MODEL, str(good)) == str(Path(good).resolve())
    with pytest.raises(GandaptError, match="--id-encoder .* inverts into model"):  # checked before any run
        multi.identity_encoder(MODEL, str(foreign))
    with pytest.raises(GandaptError, match="--id-encoder nope.pt does not exist"):
        multi.identity_encoder(MODEL, "nope.pt")
    with pytest.raises(GandaptError, match="pass --id-encoder FILE"):
        multi.identity_encoder(MODEL, None)
