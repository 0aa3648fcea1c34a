import os

import pytest
import torch

from toy_data import collate, toy_samples

from nbdetect_test_paths import GTSDB, REPO  # noqa: F401


@pytest.fixture
def toy_loader():
    from torch.utils.data import DataLoader

    return DataLoader(toy_samples(), batch_size=4, shuffle=False, collate_fn=collate)


@pytest.fixture(autouse=True)
def _few_threads():
    # with N pytest-xdist workers, each one's share of the cores (no more threads than cores in all)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // workers)))


# The files that take longest (pytest --durations on 2 cores: the fresh virtualenv, the demo notebook, the wheel,
# the learning runs, the browser's bad day) start first: with two workers (scripts/test.sh) no long file is left
# to run alone at the end. The sort is stable: every other test keeps its place, a file's tests their order.
LONGEST_FIRST = ("test_fresh_venv.py", "test_demo_notebook.py", "test_wheel.py", "test_learning.py",
                 "test_bad_day_browser.py", "test_find_lr.py", "test_distributed.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
