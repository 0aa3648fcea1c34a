"""The wheel ships the prebuilt JupyterLab extension: installed into a fresh venv without Node.js,
`jupyter labextension list` shows it enabled, and the server extension is enabled too."""
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _built() -> bool:
    return (REPO / "nbdetect" / "labextension" / "package.json").exists()


@pytest.mark.skipif(not _built() and shutil.which("npm") is None,
                    reason="the extension is not built and npm is missing (bash jupyterlab_ext/build.sh)")
def test_wheel_installs_the_prebuilt_extension_without_node(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
                   check=True, timeout=900)
    wheel = next(dist.glob("nbdetect-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("share/jupyter/labextensions/nbdetect-jupyterlab/package.json") for n in names)
    assert any(n.endswith("share/jupyter/labextensions/nbdetect-jupyterlab/install.json") for n in names)
    assert any(n.endswith("etc/jupyter/jupyter_server_config.d/nbdetect.json") for n in names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    # no node or npm on this PATH: only the venv's own programs
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = str(env_dir / "bin")
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    # the venv's own modules, run by its interpreter: `python -m jupyter <sub>` would look the
    # `jupyter-<sub>` script up on PATH
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["jupyterlab>=4.1,<5"], check=True, env=env, timeout=900)
    subprocess.run(pip + ["--no-deps", str(wheel)], check=True, env=env, timeout=300)
    out = subprocess.run([str(py), "-m", "jupyterlab.labextensions", "list"], capture_output=True, text=True,
                         env=env, timeout=120)
    listing = out.stdout + out.stderr
    assert "nbdetect-jupyterlab v0.1.0" in listing and "enabled" in listing and "OK" in listing, listing
    assert "(python, nbdetect)" in listing, listing
    out = subprocess.run([str(py), "-m", "jupyter_server.extension.serverextension", "list"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert "nbdetect" in out.stdout + out.stderr and "enabled" in out.stdout + out.stderr
