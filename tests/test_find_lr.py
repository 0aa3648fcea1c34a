"""The LR range test: suggestions read off generated sweeps (where the right LR is known), refusals for
curves too short or too noisy, and find_lr() leaving the user's model and optimizer as they were."""
import math
import random

import pytest
import torch

from nbdetect.lr_range import blown_up, suggest


def sweep_curve(rng, n=100, start=1e-6, end=0.1):
    """A sweep's loss: flat, then falling between lr_fall and lr_min (the useful range), then blowing up;
    multiplicative noise, at any scale. Returns (lrs, losses, lr_fall, lr_min)."""
    scale = 10 ** rng.uniform(-0.5, 3)
    lrs = [start * (end / start) ** (i / (n - 1)) for i in range(n)]
    log_fall = rng.uniform(math.log10(start) + 1.2, math.log10(end) - 2.2)
    log_min = log_fall + rng.uniform(0.8, 1.6)
    noise = rng.uniform(0.0, 0.03)
    losses = []
    for lr in lrs:
        x = math.log10(lr)
        if x < log_fall:
            v = 1.0
        elif x < log_min:
            v = 1.0 - 0.6 * (x - log_fall) / (log_min - log_fall)
        else:
            v = 0.4 + 3.0 * (x - log_min) ** 2
        losses.append(scale * v * (1 + rng.gauss(0, noise)))
    return lrs, losses, 10 ** log_fall, 10 ** log_min


@pytest.mark.parametrize("seed", range(40))
def test_the_suggestion_lies_in_the_range_where_the_loss_falls(seed):
    rng = random.Random(seed)
    lrs, losses, lr_fall, lr_min = sweep_curve(rng)
    s = suggest(lrs, losses)
    assert s.status == "ok", s.reason
    # the valley is inside the falling stretch (smoothing lags it by a few points: 1.5x margin each side)
    assert lr_fall / 1.5 <= s.valley <= lr_min * 1.5, (s.valley, lr_fall, lr_min)
    assert lr_fall / 1.5 <= s.steepest <= lr_min * 1.5, (s.steepest, lr_fall, lr_min)
    assert lr_min / 1.5 <= s.bottom <= lr_min * 1.5, (s.bottom, lr_min)  # located without the smoothing's lag
    assert s.lr == s.bottom  # the peak of a decaying schedule
    assert suggest(lrs, losses, schedule="constant").lr == s.valley  # a constant LR stays inside the fall


def test_a_flat_noisy_curve_gets_a_reason_not_a_number():
    rng = random.Random(3)
    lrs = [1e-6 * 10 ** (5 * i / 99) for i in range(100)]
    losses = [2.0 * (1 + rng.gauss(0, 0.05)) for _ in lrs]
    s = suggest(lrs, losses)
    assert s.status == "too_noisy" and s.lr is None and "noise" in s.reason


def test_a_short_sweep_gets_a_reason_not_a_number():
    lrs = [1e-5 * 2 ** i for i in range(12)]
    s = suggest(lrs, [1.0 - 0.05 * i for i in range(12)])
    assert s.status == "too_short" and s.lr is None and "iterations" in s.reason


def test_one_outlier_batch_does_not_end_the_sweep_but_a_blow_up_and_nan_do():
    losses = [1.0] * 30
    losses[15] = 40.0  # one bad batch
    assert not blown_up(losses)
    assert blown_up([1.0] * 20 + [2.0 * k for k in range(2, 14)])  # a rise that lasts
    assert blown_up([1.0] * 10 + [math.nan])
    lrs = [1e-6 * 10 ** (5 * i / 99) for i in range(100)]
    rng = random.Random(1)
    _, losses, lr_fall, lr_min = sweep_curve(rng)
    losses[40] = losses[40] * 30
    assert suggest(lrs, losses).status == "ok"


@pytest.mark.slow
def test_find_lr_restores_the_model_and_the_optimizer(capsys):
    from toy_data import toy_samples
    from nbdetect import build_model
    from nbdetect.lr_finder import find_lr

    torch.manual_seed(0)
    model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    model.train()
    loss = sum(model([s[0] for s in toy_samples(2)], [s[1] for s in toy_samples(2)]).values())
    loss.backward()
    optimizer.step()  # an optimizer with state, as a student's would be
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt_before = {k: {n: t.clone() for n, t in v.items()} for k, v in optimizer.state_dict()["state"].items()}
    result = find_lr(model, toy_samples(8), optimizer=optimizer, num_iter=25, start_lr=1e-5, end_lr=1e-1)
    assert 5 <= len(result.losses) <= 25 and result.lrs[0] == pytest.approx(1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    after = optimizer.state_dict()
    assert after["param_groups"][0]["lr"] == 3e-4
    assert all(torch.equal(opt_before[k][n], t) for k, v in after["state"].items() for n, t in v.items())
    assert "LR range test" in capsys.readouterr().out
    assert result.plot_png()[:4] == b"\x89PNG" and "<img" in result._repr_html_()
    assert (result.lr is None) == (result.suggestion.status != "ok")


def test_find_lr_refuses_a_reversed_range():
    from nbdetect.errors import InputError
    from nbdetect.lr_finder import find_lr

    with pytest.raises(InputError, match="start_lr"):
        find_lr(None, None, start_lr=1.0, end_lr=1e-3)


@pytest.mark.slow
def test_lr_auto_trains_with_the_suggestion_or_says_why_not(tmp_path, capsys):
    from toy_data import toy_samples

    import nbdetect
    from nbdetect.errors import InputError

    run = nbdetect.alternative_1(toy_samples(8), toy_samples(4), num_classes=2, lr="auto", epochs=1,
                                 preset="retinanet_tiny", weights=None, image_size=96, monitor=False,
                                 device="cpu", out_dir=tmp_path / "run", eval_map_every=0)
    found = run.meta["lr_finder"]
    out = capsys.readouterr().out
    assert "lr='auto'" in out and found["status"] in ("ok", "too_noisy", "too_short")
    if found["status"] == "ok":
        assert run.recipe.lr == pytest.approx(found["suggested"], rel=0.05) and "training with lr" in out
    else:
        assert run.recipe.lr == 5e-4 and "keeping the recipe's lr" in out
    assert max(run.planned_lr) == pytest.approx(run.recipe.lr, rel=1e-6)  # the schedule peaks at the chosen LR
    with pytest.raises(InputError, match="lr='fast'"):
        nbdetect.alternative_1(toy_samples(4), num_classes=2, lr="fast", monitor=False, out_dir=tmp_path / "x")


@pytest.mark.parametrize("seed", range(30))
def test_a_flat_sweep_never_gets_a_number(seed):
    """No suggestion read off noise: flat losses with noise of any size, a spike or two, at any scale."""
    rng = random.Random(100 + seed)
    scale, noise = 10 ** rng.uniform(-1, 3), rng.uniform(0.005, 0.2)
    lrs = [1e-6 * 10 ** (5 * i / 199) for i in range(200)]
    losses = [scale * (1 + rng.gauss(0, noise)) for _ in lrs]
    for _ in range(rng.randint(0, 2)):
        losses[rng.randrange(20, 180)] *= 5
    assert suggest(lrs, losses).status == "too_noisy"
