"""Anchors fitted to the data: coverage of generated box populations, the layout kept, a fit only when it
helps; end to end, the fitted anchors are said, saved with best.pt and used again by the submission."""
import numpy as np
import pytest
import torch

from nbdetect.anchors import best_anchor_iou, coverage, fit
from nbdetect.models import TINY_RATIOS, TINY_RETINANET_SIZES

SIZES, RATIOS = TINY_RETINANET_SIZES, (TINY_RATIOS,) * len(TINY_RETINANET_SIZES)


def boxes(rng, n, side, ratio, spread=0.15):
    s = side * np.exp(rng.normal(0, spread, n))
    r = ratio * np.exp(rng.normal(0, spread / 2, n))
    return s / np.sqrt(r), s * np.sqrt(r)  # w, h


@pytest.mark.parametrize("seed", range(12))
def test_a_fit_covers_boxes_the_preset_misses_and_keeps_its_layout(seed):
    rng = np.random.default_rng(seed)
    side = rng.uniform(4, 8)  # below the smallest anchor (12 px)
    ratio = rng.choice([0.5, 1.0, 2.2])  # wide, square or tall
    w, h = boxes(rng, 300, side, ratio)
    f = fit(w, h, SIZES, RATIOS)
    assert f.coverage_before < 0.7 and f.changed and f.coverage_after >= max(0.8, f.coverage_before + 0.2), f.describe()
    assert [len(level) for level in f.sizes] == [len(level) for level in SIZES]  # pretrained heads still fit
    assert [len(level) for level in f.ratios] == [len(level) for level in RATIOS]
    assert all(a < b for a, b in zip([lv[0] for lv in f.sizes], [lv[0] for lv in f.sizes][1:]))  # octaves kept
    assert f.coverage_after == pytest.approx(coverage(w, h, f.sizes, f.ratios))


def test_covered_boxes_keep_the_presets_anchors():
    rng = np.random.default_rng(0)
    w, h = boxes(rng, 300, 30, 1.0)
    f = fit(w, h, SIZES, RATIOS)
    assert not f.changed and f.sizes == tuple(tuple(float(s) for s in lv) for lv in SIZES)
    assert f.coverage_before > 0.95 and "kept" not in f.describe()


def test_shape_iou_is_one_for_an_identical_anchor_and_symmetric_in_ratio():
    assert best_anchor_iou([20.0], [20.0], [(20,)], [(1.0,)])[0] == pytest.approx(1.0)
    wide = best_anchor_iou([40.0], [20.0], [(28.28,)], [(0.5,)])[0]
    assert wide == pytest.approx(1.0, abs=1e-3)
    assert coverage([], [], SIZES, RATIOS) == 1.0


def test_fitted_anchors_are_said_saved_and_used_by_the_submission(tmp_path, capsys):
    from PIL import Image

    import nbdetect
    from nbdetect.submission import load_model

    g = torch.Generator().manual_seed(0)
    data = []
    for i in range(8):  # tall thin boxes, 4x10 px: no anchor of the tiny preset fits them
        img = torch.rand(3, 96, 96, generator=g) * 0.2
        x, y = 10 + 7 * i, 20 + 3 * i
        img[0, y:y + 10, x:x + 4] = 1.0
        data.append((img, {"boxes": torch.tensor([[x, y, x + 4.0, y + 10.0]]), "labels": torch.tensor([1])}))
    run = nbdetect.alternative_1(data, data[:4], num_classes=1, epochs=1, preset="retinanet_tiny", weights=None,
                                 image_size=96, monitor=False, device="cpu", out_dir=tmp_path / "run",
                                 eval_map_every=0)
    out = capsys.readouterr().out
    assert "anchors from 8 training boxes" in out and "->" in out
    before, after = run.meta["anchor_coverage"]
    assert after > before
    assert [list(s) for s in run.model.anchor_generator.sizes] == run.meta["anchor_sizes"]
    model, meta = load_model(run.best_checkpoint, "cpu")
    assert [list(s) for s in model.anchor_generator.sizes] == run.meta["anchor_sizes"]
    (tmp_path / "test").mkdir()
    Image.new("RGB", (96, 96)).save(tmp_path / "test" / "a.png")
    sub = nbdetect.make_submission(run.best_checkpoint, tmp_path / "test", tmp_path / "sub", score_threshold=0.0)
    assert sub["images"] == 1
