"""Build the JupyterLab extension into nbdetect/labextension (needs node + npm and JupyterLab).

One build, three callers: ``pip install .`` / ``pip wheel .`` (hatch-jupyter-builder calls :func:`build`,
see pyproject.toml), ``bash jupyterlab_ext/build.sh`` and ``python jupyterlab_ext/builder.py``.
The extension is built against the running Python's JupyterLab core metadata, so nothing is downloaded
but the npm packages.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "nbdetect" / "labextension"


def _run(cmd, **kw):
    print("jupyterlab_ext/builder.py:", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=HERE, check=True, **kw)


def labextension_build_command(staging: Path) -> list[str]:
    """The command that builds the prebuilt extension against the JupyterLab core in ``staging`` (its
    package.json), run by this interpreter: never a program looked up on PATH.

    JupyterLab 4.6 deprecated `jupyter labextension build` for `jupyter-builder build` (the jupyter-builder
    package, a JupyterLab dependency since 4.6), and that alias runs `jupyter-builder` from PATH: in a
    virtualenv that is not activated, another Python's or none. So jupyter-builder's module is run with
    sys.executable. JupyterLab 4.1 to 4.5 have no jupyter-builder; their own module builds (`--core-path`).
    """
    if importlib.util.find_spec("jupyter_builder") is not None:
        return [sys.executable, "-m", "jupyter_builder.main", "build", ".",
                "--core-package-file", staging / "package.json"]
    return [sys.executable, "-m", "jupyterlab.labextensions", "build", ".", "--core-path", staging]


def stale() -> bool:
    target = OUT / "package.json"
    if not target.exists() or not (OUT / "install.json").exists():
        return True
    built = target.stat().st_mtime
    sources = [*(HERE / "src").rglob("*"), *(HERE / "style").rglob("*"), HERE / "package.json"]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def build(target_name: str = "wheel", version: str = "standard", force: bool = False, **_ignored) -> None:
    """hatch-jupyter-builder's build function: build when missing or older than the sources."""
    if os.environ.get("HATCH_JUPYTER_BUILDER_SKIP_NPM") == "1" or not (force or stale()):
        print("jupyterlab_ext/builder.py: the extension is built and up to date", flush=True)
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: install Node.js to build the JupyterLab extension "
                           "(a wheel of nbdetect ships it prebuilt)")
    import jupyterlab

    staging = Path(jupyterlab.__file__).parent / "staging"
    _run([npm, "ci", "--no-audit", "--no-fund"] if (HERE / "package-lock.json").exists() else [npm, "install"])
    _run([npm, "exec", "--", "tsc", "--project", "tsconfig.json"])
    _run(labextension_build_command(staging))
    shutil.copyfile(HERE / "install.json", OUT / "install.json")  # tells `jupyter labextension list` the package


if __name__ == "__main__":
    build(force="--force" in sys.argv)
