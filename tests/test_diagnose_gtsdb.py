"""diagnose() on the real GTSDB images (skipped when ../shared/data/gtsdb is absent)."""
import pytest

from nbdetect_test_paths import GTSDB
from diagnose_helpers import gtsdb_dataset, loader, tiny
from nbdetect.checks import diagnose

pytestmark = pytest.mark.skipif(not (GTSDB / "gt.txt").exists(), reason="GTSDB data not present")


@pytest.mark.slow
def test_gtsdb_is_clean_data_with_small_signs_for_a_256px_model():
    ds = gtsdb_dataset(GTSDB)
    model = tiny(num_classes=43)  # resizes 1360x800 images to 128 px on the short side
    report = diagnose(model, data=loader(ds), max_samples=200, max_image_stats=8, overfit=False)
    assert report.codes("fail") == [], report.to_text()
    for ok in ("images_ok", "boxes_ok", "labels_ok", "prior_bias_ok"):
        assert report.get(ok) is not None and report.get(ok).status == "pass", report.to_text()
    small = report.get("box_too_small_for_anchors")
    assert small is not None and small.status == "warn" and small.indices
    # the same data against a model that keeps the images large has no such warning
    big = tiny(num_classes=43)
    big.transform.min_size, big.transform.max_size = (800,), 1360
    report = diagnose(big, data=loader(ds), max_samples=200, max_image_stats=4, overfit=False)
    assert report.get("box_too_small_for_anchors") is None and report.get("anchors_ok") is not None, report.to_text()
