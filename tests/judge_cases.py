"""Generated epoch histories with known truth, for the live verdict and diagnose() (tests and benchmarks).

Each case is a run as a student's notebook would log it: per-epoch train and validation loss, LR and
sometimes mAP, on an arbitrary loss scale (0.3 to 2000 x torchvision's), with multiplicative noise and
validation gaps. ``truth`` comes from how the case was generated, never from a rule's threshold:

- ``"healthy"``: no verdict may ever say stop (switch/diagnose/fail);
- ``"broken"``: the cause begins at a known epoch (an LR cut, a blow-up, a NaN, the guide's own decision epoch
  for its recipes); from ``evidence_epoch`` (the cause plus the validated epochs its noise needs to be told
  apart, :func:`needed`) every verdict must say stop, not merely warn;
- ``"suspect"``: a run of unknown convention that stopped improving or overfits: no goal says it failed, but
  from ``evidence_epoch`` on no verdict may call it fine (continue/success).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    family: str
    truth: str  # "healthy" | "broken"
    recipe: str
    total: int
    epochs: list[dict] = field(default_factory=list)
    evidence_epoch: int | None = None  # broken: the first epoch at which the evidence exists
    expect_rule: tuple[str, ...] = ()  # rule ids acceptable as the main finding once evident
    expect_code: tuple[str, ...] = ()  # diagnose codes acceptable as the curve finding once evident


def needed(noise: float) -> int:
    """Validated epochs a trend needs, at this relative noise, before a stop can rest on it: the least n whose
    least-squares slope has a standard error under 1%/epoch (statistics of the generator's noise)."""
    n = 5
    while noise * math.sqrt(12 / (n ** 3 - n)) > 0.01:
        n += 1
    return n


def cosine(total, peak=5e-4, floor=1e-6, warmup=0):
    out = []
    for e in range(1, total + 1):
        if e <= warmup:
            out.append(peak * e / (warmup + 1))
        else:
            t = (e - warmup) / max(1, total - warmup)
            out.append(floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * t)))
    return out


def steps(total, milestones, lr=2e-4, gamma=0.1):
    return [lr * gamma ** sum(e > m for m in milestones) for e in range(1, total + 1)]


def _records(val, lrs, rng, *, scale, noise, train_gap=1.06, train=None, gaps=0, maps=None):
    out = []
    for i, v in enumerate(val):
        e = i + 1
        t = train[i] if train is not None else v * train_gap
        rec = {"epoch": e, "train_loss": scale * t * (1 + rng.gauss(0, noise / 2)),
               "val_loss": scale * v * (1 + rng.gauss(0, noise)), "lr": lrs[i]}
        if maps is not None:
            rec["map50"] = maps[i]
        if gaps and e % gaps != 0 and e != len(val):
            rec["val_loss"] = float("nan") if e % 3 else None
        out.append(rec)
    return out


def generate(seed: int = 0, n: int = 60) -> list[Case]:
    """``n`` cases cycling through the families below with random scale, length, noise and gaps."""
    rng = random.Random(seed)
    families = [_healthy_exp, _healthy_power, _warmup_bump, _healthy_steps, _seed_cut, _crawl_after_cut,
                _plateau, _not_learning, _diverging, _nan, _overfitting, _slow_crawl]
    cases = []
    for i in range(n):
        fam = families[i % len(families)]
        scale = math.exp(rng.uniform(math.log(0.3), math.log(2000)))
        total = rng.choice([8, 12, 20, 30, 40, 50, 60, 100])
        noise = rng.choice([0.0, 0.01, 0.02, 0.03])
        gaps = rng.choice([0, 0, 0, 2, 3])
        case = fam(rng, total, scale, noise, gaps)
        case.name = f"{case.family}-{i}-x{scale:.3g}-{total}ep-n{noise:g}-g{gaps}"
        cases.append(case)
    return cases


def _healthy_exp(rng, total, scale, noise, gaps):
    floor = rng.uniform(0.04, 0.15)
    k = rng.uniform(4, 8) / total
    val = [floor + (1 - floor) * math.exp(-k * e) for e in range(1, total + 1)]
    return Case("", "healthy_exp", "healthy", rng.choice(["alternative_1", "alternative_2", "custom"]), total,
                _records(val, cosine(total), rng, scale=scale, noise=noise, gaps=gaps))


def _healthy_power(rng, total, scale, noise, gaps):
    b = rng.uniform(0.8, 1.4)
    tau = total / rng.uniform(6, 12)
    val = [(1 + e / tau) ** -b for e in range(1, total + 1)]
    maps = [min(0.9, 0.7 * (1 - v)) for v in val] if rng.random() < 0.5 else None
    return Case("", "healthy_power", "healthy", rng.choice(["alternative_1", "custom"]), total,
                _records(val, cosine(total), rng, scale=scale, noise=noise, gaps=gaps, maps=maps))


def _warmup_bump(rng, total, scale, noise, gaps):
    warm = max(2, total // 10)
    bump = rng.uniform(0.1, 0.4)
    k = rng.uniform(5, 8) / total
    val = []
    for e in range(1, total + 1):
        base = 0.08 + 0.92 * math.exp(-k * max(0, e - warm))
        val.append(base * (1 + bump * math.sin(math.pi * e / (warm + 1))) if e <= warm else base)
    return Case("", "warmup_bump", "healthy", "alternative_1", total,
                _records(val, cosine(total, warmup=warm), rng, scale=scale, noise=noise, gaps=gaps,
                         train_gap=1.1))


def _healthy_steps(rng, total, scale, noise, gaps):
    """torchvision-style: step cuts late (2/3 and 8/9 of the run), each followed by a drop."""
    m1, m2 = round(total * 2 / 3), round(total * 8 / 9)
    k = rng.uniform(5, 8) / total
    val = []
    for e in range(1, total + 1):
        v = 0.12 + 0.88 * math.exp(-k * e)
        v *= 0.8 if e > m1 else 1.0
        v *= 0.92 if e > m2 else 1.0
        val.append(v)
    return Case("", "healthy_steps", "healthy", rng.choice(["custom", "seed_multistep"]), total,
                _records(val, steps(total, (m1, m2)), rng, scale=scale, noise=noise, gaps=gaps))


def _seed_cut(rng, total, scale, noise, gaps):
    """The AS4 run: learned to 40-70% of the start, LR cut 10x early, flat since."""
    total = max(total, 20)
    cut = round(total * rng.uniform(0.3, 0.5))
    level = rng.uniform(0.4, 0.7)
    val = []
    for e in range(1, total + 1):
        if e <= cut:
            val.append(level + (1 - level) * math.exp(-8 * e / cut))
        else:
            val.append(val[cut - 1] * (1 - 0.001 * (e - cut)))
    recipe = rng.choice(["seed_multistep", "custom"])
    # the guide's seed: cut while far above the guide's goal. A loop of unknown convention: flat since long before
    # the cut (no goal says 40-70% of the start is too high), so a plateau to flag, not a proven failure
    guide = recipe == "seed_multistep"
    evidence = max(cut + 4, needed(noise)) if guide else cut + max(10, total // 4) + needed(noise)
    return Case("", "seed_cut", "broken" if guide else "suspect", recipe, total,
                _records(val, steps(total, (cut, round(total * 0.75))), rng, scale=scale, noise=noise, gaps=0),
                evidence_epoch=evidence, expect_rule=("lr_too_low", "plateau", "final_seed", "final_own_evidence"),
                expect_code=("lr_decay_before_convergence", "lr_too_low", "loss_plateau"))


def _crawl_after_cut(rng, total, scale, noise, gaps):
    """Still learning at the cut (far above the goal), then crawling (~1%/epoch) to 40% of the start at the end."""
    total = max(total, 30)
    cut = round(total * 0.35)
    crawl = (0.4 / 0.5) ** (1 / (total - cut))
    val = []
    for e in range(1, total + 1):
        if e <= cut:
            val.append(1 - 0.5 * e / cut)  # falling steadily to half the start: far from converged
        else:
            val.append(val[cut - 1] * crawl ** (e - cut))
    return Case("", "crawl_after_cut", "broken", "custom", total,
                _records(val, steps(total, (cut,), lr=3e-4), rng, scale=scale, noise=min(noise, 0.01), gaps=0),
                evidence_epoch=cut + 6, expect_rule=("lr_too_low", "plateau"),
                expect_code=("lr_decay_before_convergence", "lr_too_low", "loss_plateau"))


def _plateau(rng, total, scale, noise, gaps):
    """Constant LR: learned to 45-70% of the start early, then flat."""
    total = max(total, 20)
    level = rng.uniform(0.45, 0.7)
    k = 10 / total
    val = [level + (1 - level) * math.exp(-k * e) for e in range(1, total + 1)]
    flat_from = next(e for e, v in enumerate(val, 1) if v < level * 1.01)
    recipe = rng.choice(["alternative_1", "custom"])
    # the guide's recipe: its decision (epoch 20 of 50) is where the cause is judged; own evidence: a quarter of
    # the run flat after the plateau began
    guide = recipe == "alternative_1"
    decision = round(20 * total / 50) if guide else flat_from + max(10, total // 4) * (gaps or 1)
    return Case("", "plateau", "broken" if guide else "suspect", recipe, total,
                _records(val, [3e-4] * total, rng, scale=scale, noise=noise, gaps=gaps),
                evidence_epoch=max(decision, flat_from + 10, round(0.45 * total)) + (gaps or 1) * needed(noise) // 2,
                expect_rule=("plateau", "alt1_epoch20", "early_epoch15"),
                expect_code=("loss_plateau", "below_expected_curve"))


def _not_learning(rng, total, scale, noise, gaps):
    """Bad data: the loss barely moves."""
    val = [1 - 0.002 * e for e in range(1, total + 1)]
    recipe = rng.choice(["alternative_1", "alternative_2", "custom"])
    guide = recipe != "custom"
    decision = round(20 * total / (50 if recipe == "alternative_1" else 40)) if guide else 6
    return Case("", "not_learning", "broken" if guide else "suspect", recipe, total,
                _records(val, cosine(total), rng, scale=scale, noise=noise, gaps=gaps),
                evidence_epoch=max(decision, 6 + (gaps or 1) * needed(noise)),
                expect_rule=("early_epoch15", "alt1_epoch20", "not_learning",
                                                                            "alt2_epoch20", "plateau"),
                expect_code=("loss_plateau", "below_expected_curve"))


def _diverging(rng, total, scale, noise, gaps):
    total = max(total, 12)
    d = rng.randint(3, total // 2)
    grow = rng.uniform(1.15, 1.4)
    val = []
    for e in range(1, total + 1):
        val.append(0.3 + 0.7 * math.exp(-0.3 * e) if e <= d else val[d - 1] * grow ** (e - d))
    best = min(val)
    evident = next((e for e, v in enumerate(val, 1) if e > d and v > 1.6 * best), total)
    return Case("", "diverging", "broken", rng.choice(["alternative_1", "custom"]), total,
                _records(val, cosine(total), rng, scale=scale, noise=min(noise, 0.02), gaps=0),
                evidence_epoch=min(total, evident + 1), expect_rule=("divergence",), expect_code=("lr_too_high",))


def _nan(rng, total, scale, noise, gaps):
    total = max(total, 8)
    at = rng.randint(2, total - 1)
    val = [0.3 + 0.7 * math.exp(-0.3 * e) for e in range(1, total + 1)]
    recs = _records(val, cosine(total), rng, scale=scale, noise=noise, gaps=0)
    for r in recs[at - 1:]:
        r["train_loss"] = float("nan")
        r["val_loss"] = float("nan")
    return Case("", "nan", "broken", "alternative_1", total, recs, evidence_epoch=at, expect_rule=("nonfinite",),
                expect_code=("lr_too_high",))


def _overfitting(rng, total, scale, noise, gaps):
    total = max(total, 20)
    turn = rng.randint(4, total // 2)
    slope = rng.uniform(0.04, 0.1)
    val, train = [], []
    for e in range(1, total + 1):
        base = 0.25 + 0.75 * math.exp(-5 * e / turn)
        train.append(base * (0.97 ** max(0, e - turn)))
        val.append(base if e <= turn else (0.25 + 0.75 * math.exp(-5)) * (1 + slope * (e - turn)))
    best = min(val)
    evident = next((e for e, v in enumerate(val, 1) if e > turn and v > 1.1 * best), total)
    evident = min(total, max(evident, turn) + 4)
    return Case("", "overfitting", "suspect", "alternative_1", total,
                _records(val, cosine(total), rng, scale=scale, noise=min(noise, 0.02), train=train, gaps=0),
                evidence_epoch=evident, expect_rule=("overfitting", "divergence"), expect_code=("overfitting",))


def _slow_crawl(rng, total, scale, noise, gaps):
    """Learning at ~1%/epoch from the start: far from any goal."""
    total = max(total, 30)
    val = [0.99 ** e for e in range(1, total + 1)]
    recipe = rng.choice(["alternative_1", "custom"])
    # the guide's recipe misses its own line (stop at its decision epoch); a loop of unknown convention that
    # keeps falling 1%/epoch is learning: no goal says otherwise, so it is never stopped
    guide = recipe == "alternative_1"
    return Case("", "slow_crawl", "broken" if guide else "healthy", recipe, total,
                _records(val, cosine(total), rng, scale=scale, noise=min(noise, 0.01), gaps=gaps),
                evidence_epoch=max(round(0.4 * total), (gaps or 1) * needed(min(noise, 0.01))) + (gaps or 1),
                expect_rule=("early_epoch15", "alt1_epoch20", "plateau"),
                expect_code=("loss_plateau", "below_expected_curve"))


def violations(case: Case, decide) -> list[str]:
    """Every epoch at which ``decide`` contradicts the case's truth (empty: judged right throughout)."""
    bad = []
    for k in range(1, len(case.epochs) + 1):
        v = decide(case.epochs[:k], case.recipe, case.total)
        if case.truth == "healthy" and v.status in ("switch", "diagnose", "fail"):
            bad.append(f"epoch {k}: {v.status} ({v.rule_id}) {v.headline}")
        evident = k >= (case.evidence_epoch or 1)
        if case.truth == "broken" and evident and v.status not in ("switch", "diagnose", "fail"):
            bad.append(f"epoch {k}: {v.status} ({v.rule_id}) {v.headline} (past the evidence: must stop)")
        if case.truth == "suspect" and evident and v.status in ("continue", "success", "pending"):
            bad.append(f"epoch {k}: {v.status} ({v.rule_id}) {v.headline}")
    return bad
