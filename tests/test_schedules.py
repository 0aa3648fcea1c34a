import math

import pytest
import torch

from nbdetect import schedules
from nbdetect.recipes import ALTERNATIVE_1, SEED_MULTISTEP


def test_warmup_cosine_values_at_key_steps():
    s = schedules.warmup_cosine(5e-4, 1e-6, epochs=50, steps_per_epoch=10, warmup_epochs=1)
    assert s.lr_at(0) == pytest.approx(5e-4 * 0.001)
    assert s.lr_at(5) == pytest.approx(5e-4 * 0.001 + (5e-4 - 5e-7) * 0.5)
    assert s.lr_at(10) == pytest.approx(5e-4)  # warmup done: peak
    mid = 10 + (500 - 1 - 10) // 2
    assert s.lr_at(mid) == pytest.approx((5e-4 + 1e-6) / 2, rel=1e-2)
    assert s.lr_at(499) == pytest.approx(1e-6)
    lrs = s.planned()
    assert len(lrs) == 500
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])), "cosine part must never increase"


def test_seed_multistep_reproduces_the_guide_timeline():
    s = SEED_MULTISTEP.make_schedule(steps_per_epoch=100)
    per_epoch = s.per_epoch()
    assert len(per_epoch) == 60
    assert per_epoch[29] == pytest.approx(2e-4)
    assert per_epoch[30] == pytest.approx(2e-5)  # the cut at epoch 30
    assert per_epoch[41] == pytest.approx(2e-5)  # "you are here at epoch 41"
    assert per_epoch[45] == pytest.approx(2e-6)


def test_scaled_recipe_keeps_relative_milestones():
    r = SEED_MULTISTEP.scaled(12)
    assert r.milestones == (6, 9)
    assert ALTERNATIVE_1.scaled(10).decision_epoch == 4


def test_lambda_lr_follows_schedule_exactly():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=123.0)
    s = schedules.warmup_cosine(0.01, 1e-5, epochs=3, steps_per_epoch=4, warmup_epochs=1)
    sch = schedules.to_torch(opt, s)
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    assert seen == pytest.approx(s.planned())


def test_bad_schedule_arguments_are_rejected():
    with pytest.raises(ValueError):
        schedules.Schedule("bogus", 1e-3, 10)
    with pytest.raises(ValueError):
        schedules.Schedule("constant", -1.0, 10)
    assert math.isclose(schedules.constant(1e-3, 2, 5).lr_at(9), 1e-3)
