"""tiles= on real GTSDB frames: alternative_1 trains on tiles, make_submission writes full-frame boxes in the
frames' own pixels (skipped when ../shared/data/gtsdb is absent)."""
import csv
from pathlib import Path

import pytest

import nbdetect
from nbdetect_test_paths import GTSDB

pytestmark = [pytest.mark.skipif(not (GTSDB / "gt.txt").exists(), reason="GTSDB data not present"),
              pytest.mark.slow]  # trains and predicts real frames


def test_alternative_1_trains_on_tiles_and_submits_full_frames(tmp_path, monkeypatch, capsys):
    from nbdetect.data import load_gtsdb

    monkeypatch.chdir(tmp_path)
    frames = load_gtsdb(GTSDB)
    train, val = frames.subset(range(0, 4)), frames.subset(range(6, 7))
    run = nbdetect.alternative_1(train, val, epochs=1, preset="retinanet_tiny", weights=None, device="cpu",
                                 monitor="text", tiles={"size": 320, "background": 0.3, "seed": 1}, out_dir="run")
    said = capsys.readouterr().out
    assert run.status == "finished", run.message
    assert "tiles of 320x320 px" in said and "no objects (a background image)" not in said
    tiles = run.meta["tiles"]
    assert tiles["size"] == 320 and tiles["seed"] == 1 and tiles["frames"] == 4 and tiles["tiles"] > 4
    assert run.meta["min_size"] == run.meta["max_size"] == 320  # tiles go in at native resolution
    assert "map" in run.history.epochs[-1]  # the per-epoch mAP, on the full validation frames by slices
    # the panel's header and diagnose (of the run folder, and of the tiled data) say the run uses tiles
    from nbdetect.checks import diagnose
    from nbdetect.monitor.panel import PanelMonitor

    assert "320-px tiles" in PanelMonitor(min_render_interval=0.0).bind(run).header.value
    assert "320-px tiles" in diagnose(history=run.out_dir, plots=False).to_text()
    assert "the data are tiles" in diagnose(data=run.train_loader, plots=False, overfit=False).to_text()

    images = [frames.records[8].source]  # (an untrained model scores about 0.02: a low threshold writes boxes)
    sub = nbdetect.make_submission(run, images, out_dir="sub", score_threshold=0.01)
    assert sub["slices"] == 320 and sub["images"] == 1
    assert all(n <= 100 for n in sub["boxes_per_image"])
    with open(sub["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "no box written"
    # boxes in the 1360x800 frames' pixels: some beyond a tile's side, none outside the frame
    xs = [float(r["x2"]) for r in rows]
    ys = [float(r["y2"]) for r in rows]
    assert max(xs) > 320 and max(xs) <= 1360.5 and max(ys) <= 800.5
    assert {r["file_name"] for r in rows} <= {Path(p).name for p in images}
    # slices=False: the whole frame in one pass, at its own resolution (the tiles' scale), boxes in its pixels
    whole = nbdetect.make_submission(run, images, out_dir="sub_whole", score_threshold=0.01, slices=False)
    assert whole["slices"] is None and whole["images"] == 1
    with open(whole["csv"]) as fh:
        xs = [float(r["x2"]) for r in csv.DictReader(fh)]
    assert xs and max(xs) > 320 and max(xs) <= 1360.5

    # resumed without tiles=: the checkpoint's tiles (the same plan); other tiles are refused
    from nbdetect.errors import NbdetectError

    with pytest.raises(NbdetectError, match="tiles"):
        nbdetect.alternative_1(train, val, epochs=1, preset="retinanet_tiny", weights=None, device="cpu",
                               monitor=False, tiles=256, resume="run/last.pt")
    from nbdetect.alternatives import resumed_checkpoint, resumed_tiles

    assert resumed_tiles(None, resumed_checkpoint("run/last.pt", None, "alternative_1")).to_dict() == {
        k: tiles[k] for k in ("size", "overlap", "background", "seed", "min_visible")}
