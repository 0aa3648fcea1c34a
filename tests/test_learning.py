import pytest

from nbdetect import alternative_1, alternative_2


@pytest.mark.slow
def test_small_retinanet_learns_on_the_synthetic_signs(tmp_path):
    run = alternative_1(None, None, weights=None, epochs=4, monitor=False, out_dir=tmp_path,
                        synthetic={"n_train": 96, "n_val": 32, "image_size": (256, 256)})
    val = [e["val_loss"] for e in run.history.epochs]
    assert run.recipe.preset == "retinanet_tiny"  # CPU + synthetic data picks the CPU-sized model
    assert val[-1] < 0.85 * val[0], val
    assert run.history.epochs[-1]["map50"] > run.history.epochs[0]["map50"]
    assert 0.8 < run.history.epochs[0]["val_classification"] < 1.5  # prior-bias start, torchvision's scale


@pytest.mark.slow
def test_small_faster_rcnn_learns_on_the_synthetic_signs(tmp_path):
    run = alternative_2(None, None, weights=None, epochs=3, monitor=False, out_dir=tmp_path, eval_map_every=0,
                        synthetic={"n_train": 64, "n_val": 24, "image_size": (256, 256)})
    val = [e["val_loss"] for e in run.history.epochs]
    assert run.recipe.preset == "fasterrcnn_tiny"
    assert val[-1] < 0.85 * val[0], val
