"""nbdetect: rescue object-detection training in notebooks.

Cell functions: :func:`alternative_1`, :func:`alternative_2`, :func:`alternative_3`,
:func:`diagnose`, :func:`make_submission`. See README.md.
"""
__version__ = "0.1.0"

from .alternatives import alternative_1, alternative_2, alternative_3, raise_lr, run_recipe, seed_multistep
from .diagnose import Finding, Report, diagnose
from .data import load_coco, load_gtsdb, load_voc, load_yolo, synthetic_split
from .history import History
from .models import PRESETS, build_model
from .recipes import ALTERNATIVE_1, ALTERNATIVE_2, ALTERNATIVE_3, SEED_MULTISTEP, Recipe
from .submission import load_model, make_submission
from .trainer import TrainingRun
from .yolo_compare import compare_with_yolo

__all__ = [
    "alternative_1", "alternative_2", "alternative_3", "seed_multistep", "run_recipe", "raise_lr",
    "make_submission", "load_model", "compare_with_yolo", "diagnose", "Report", "Finding", "build_model", "PRESETS", "TrainingRun", "History", "Recipe",
    "ALTERNATIVE_1", "ALTERNATIVE_2", "ALTERNATIVE_3", "SEED_MULTISTEP",
    "load_yolo", "load_coco", "load_voc", "load_gtsdb", "synthetic_split",
]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension shipped in the wheel (built by jupyterlab_ext/build.sh)."""
    return [{"src": "labextension", "dest": "nbdetect-jupyterlab"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension serving ``GET <base_url>/nbdetect/cells`` to the JupyterLab extension."""
    return [{"module": "nbdetect.server_extension"}]
