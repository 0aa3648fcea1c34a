import os
from pathlib import Path

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
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
