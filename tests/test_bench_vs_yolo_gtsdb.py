"""benchmarks/bench_vs_yolo.py --gtsdb: the tiles both frameworks train on are nbdetect's own tile plan, the
frame splits are disjoint, and the one evaluator scores tiles and whole frames (by slices, merged into frame
pixels) so that a model that finds every sign gets a full score, and one that finds them but names them wrong
is told apart (skipped when ../shared/data/gtsdb is absent)."""
import sys

import pytest
import torch

from nbdetect_test_paths import GTSDB, REPO

pytestmark = pytest.mark.skipif(not (GTSDB / "gt.txt").exists(), reason="GTSDB data not present")


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_vs_yolo

    yield bench_vs_yolo
    sys.modules.pop("bench_vs_yolo", None)


def _frames_with_signs(n):
    from nbdetect.data import load_gtsdb

    frames = load_gtsdb(GTSDB, superclasses=True)
    return frames, [i for i in range(len(frames)) if len(frames.target(i)["boxes"])][:n]


def test_the_export_holds_nbdetects_tiles_of_disjoint_frames(bench, tmp_path):
    from nbdetect.data.tiles import TiledDataset, tile_config

    frames, with_signs = _frames_with_signs(3)
    a, b, c = with_signs
    splits = {"train": range(a, a + 1), "val": range(b, b + 1), "test": range(c, c + 1)}
    tile = {"size": 320, "overlap": 0.25, "background": 0.2, "seed": 0}
    yaml = bench.export_gtsdb(tmp_path / "data", GTSDB, tile, 4, splits)
    assert "test: images/test" in yaml.read_text()
    expected = TiledDataset(frames.subset(splits["train"]), tile_config(tile))
    paths, targets, sizes = bench.split_truth(yaml, "train")
    assert len(paths) == len(expected) > 0 and all(s == (320, 320) for s in sizes)
    for i, target in enumerate(targets):
        want = expected[i][1]
        assert torch.equal(target["labels"], want["labels"])
        assert torch.allclose(target["boxes"], want["boxes"], atol=0.01)
    with pytest.raises(SystemExit, match="overlap"):
        bench.export_gtsdb(tmp_path / "again", GTSDB, tile, 4, {"train": range(0, 5), "test": range(4, 6)})


def test_one_evaluator_gives_a_model_that_finds_every_sign_a_full_score_on_tiles_and_on_sliced_frames(
        bench, tmp_path, monkeypatch):
    from nbdetect.data.tiles import cut

    frames, with_signs = _frames_with_signs(3)
    test = range(with_signs[2], with_signs[2] + 2)
    tile = {"size": 320, "overlap": 0.25, "background": 0.2, "seed": 0}
    yaml = bench.export_gtsdb(tmp_path / "data", GTSDB, tile, 4,
                              {"train": range(with_signs[0], with_signs[0] + 1), "test": test})
    monkeypatch.setattr(bench, "GTSDB", GTSDB)
    # an oracle that knows the truth of every image it may be shown: the exported test tiles, and every slice
    # of the test frames (the truth a slice holds: its boxes mostly inside)
    truth = {}
    paths, targets, _ = bench.split_truth(yaml, "test")
    for p, t in zip(paths, targets):
        truth[bench.read_image(p).numpy().tobytes()] = t
    from nbdetect.data.tiles import TileConfig
    from nbdetect.slicing import slice_image

    cfg = TileConfig(**tile)
    for i in test:
        image, target = frames[i]
        for s, win in zip(*slice_image(image, cfg)):
            truth[s.contiguous().numpy().tobytes()] = cut(image, target, win, cfg.min_visible)[1]
    asked = []

    def oracle(images):
        asked.append(len(images))
        out = []
        for im in images:
            t = truth[im.contiguous().numpy().tobytes()]
            out.append({"boxes": t["boxes"], "labels": t["labels"], "scores": torch.ones(len(t["labels"]))})
        return out

    result = bench.evaluate(oracle, yaml)
    assert result["scored_on"].startswith("test") and asked
    assert result["map50"] == pytest.approx(1.0) and result["map"] > 0.95
    assert result["full_frame_sliced_map50"] > 0.95  # slices merged back into each sign once, in frame pixels
    assert set(result["map50_per_class"]) <= {1, 2, 3, 4}
    assert result["map50_class_agnostic"] == pytest.approx(1.0)
    assert result["found"] == sum(len(t["labels"]) for t in targets) > 0 and result["found_named_wrong"] == 0

    def misnamer(images):  # finds every sign, names each with the next class
        return [{**d, "labels": d["labels"] % 4 + 1} for d in oracle(images)]

    swapped = bench.evaluate(misnamer, yaml)
    assert swapped["map50"] == 0.0 and swapped["map50_class_agnostic"] == pytest.approx(1.0)
    assert swapped["found_named_wrong"] == swapped["found"] == result["found"]

    def blind(images):
        return [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}
                for _ in images]

    nothing = bench.evaluate(blind, yaml)
    assert nothing["map50"] == 0.0 and nothing["full_frame_sliced_map50"] == 0.0
