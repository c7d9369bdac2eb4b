"""The shared step loop: logging, checkpoints, NaN stop, resume trimming."""

import json

import pytest
import torch

from gandapt.errors import GandaptError
from gandapt.trainer.steps import Counter, adam_update, check_resume, loss_log, run_steps


def _setup():
    w = torch.nn.Parameter(torch.tensor([3.0]))
    opt = torch.optim.SGD([w], lr=0.1)

    def step_fn(step):
        loss = (w - 1).pow(2).sum()
        return loss, loss_log(loss, {"sq": loss})

    return w, opt, step_fn


def test_runs_logs_and_checkpoints_every_step(tmp_path):
    w, opt, step_fn = _setup()
    saved, seen = [], []
    counter = Counter()
    run_steps(counter, 5, step_fn, adam_update(opt), out=tmp_path, desc="t", progress=False,
              checkpoint=lambda: saved.append(counter.step), checkpoint_minutes=0.0, on_step=seen.append)
    assert counter.step == 5 and counter.seconds > 0 and seen == [1, 2, 3, 4, 5]
    assert saved == [1, 2, 3, 4, 5, 5]  # periodic (every step at 0 minutes) plus the final one
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5] and lines[0]["loss"] == pytest.approx(4.0)
    assert float(w.detach()) < 3  # the updates were applied (w descends towards 1)


def test_resume_trims_steps_logged_after_the_checkpoint(tmp_path):
    w, opt, step_fn = _setup()
    (tmp_path / "log.jsonl").write_text("".join(json.dumps({"step": s, "loss": 0}) + "\n" for s in (1, 2, 3)))
    counter = Counter(step=2)
    run_steps(counter, 4, step_fn, adam_update(opt), out=tmp_path, desc="t", progress=False,
              checkpoint=lambda: None, checkpoint_minutes=60.0)
    assert [json.loads(x)["step"] for x in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_nan_stops_before_updating_or_saving(tmp_path):
    w = torch.nn.Parameter(torch.tensor([3.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    saved = []

    def step_fn(step):
        loss = (w * (float("nan") if step == 2 else 1.0)).sum()
        return loss, {"loss": float(loss.detach())}

    with pytest.raises(GandaptError, match="loss became nan at step 3; stopped, and the last checkpoint"):
        run_steps(Counter(), 10, step_fn, adam_update(opt), out=tmp_path, desc="t", progress=False,
                  checkpoint=lambda: saved.append(1), checkpoint_minutes=60.0)
    assert saved == [] and torch.isfinite(w).all()


def test_check_resume_refuses_other_options_or_base(tmp_path):
    check_resume(tmp_path, tmp_path / "c.pt", (), "g2:a", "g2:a")
    with pytest.raises(GandaptError, match="started with different lr, steps"):
        check_resume(tmp_path, tmp_path / "c.pt", ("lr", "steps"), "g2:a", "g2:a")
    with pytest.raises(GandaptError, match="belongs to another base model"):
        check_resume(tmp_path, tmp_path / "c.pt", (), "g2:a", "g2:b")
