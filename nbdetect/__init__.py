"""nbdetect: rescue object-detection training in notebooks.

Cell functions: :func:`alternative_1`, :func:`alternative_2`, :func:`alternative_3`,
:func:`diagnose`, :func:`make_submission`. See README.md.
"""
__version__ = "0.1.0"

import os as _os
import sys as _sys

# torch.cuda.is_available() then asks NVML instead of initialising CUDA, so that a later devices=N run can still
# fork its processes (nbdetect.distributed); torch documents this variable for exactly that. A user's own value wins.
_os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

# Public names, imported on first use (PEP 562): the Jupyter server imports this package for its
# extension hooks, and must not pay for importing torch.
_EXPORTS = {
    "alternatives": ["alternative_1", "alternative_2", "alternative_3", "raise_lr", "run_recipe", "seed_multistep"],
    "cells": ["from_notebook"],
    "checks": ["Finding", "Report", "diagnose"],
    "run_guard": ["stop_all", "wait_for_active"],
    "run_dirs": ["best_checkpoint"],
    "data": ["load_coco", "load_gtsdb", "load_voc", "load_yolo", "synthetic_split"],
    "history": ["History", "per_batch"],
    "lr_finder": ["find_lr"],
    "models": ["PRESETS", "build_model"],
    "recipes": ["ALTERNATIVE_1", "ALTERNATIVE_2", "ALTERNATIVE_3", "SEED_MULTISTEP", "Recipe"],
    "submission": ["load_model", "make_submission"],
    "trainer": ["TrainingRun"],
    "yolo_compare": ["compare_with_yolo"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        # a recipe registered from your code (recipes.register: its module is loaded by then): its cell calls it
        recipes = _sys.modules.get(f"{__name__}.recipes")
        if not name.startswith("_") and getattr(recipes, "find", lambda _: None)(name) is not None:
            from .alternatives import recipe_function

            return recipe_function(name)
        raise AttributeError(f"module 'nbdetect' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension shipped in the wheel (built by jupyterlab_ext/build.sh)."""
    return [{"src": "labextension", "dest": "nbdetect-jupyterlab"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension serving ``GET <base_url>/nbdetect/cells`` to the JupyterLab extension."""
    return [{"module": "nbdetect.server_extension"}]
