"""Where the tests find the repository and the shared GTSDB data (skipped when absent)."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GTSDB = Path(os.environ.get("NBDETECT_GTSDB", REPO.parent / "shared" / "data" / "gtsdb"))
