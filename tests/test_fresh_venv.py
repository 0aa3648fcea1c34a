"""The README's two commands work in a fresh virtualenv that is NOT activated: its python runs the install
command and `PYTHON=<its python> bash scripts/test.sh --collect-only -q` collects every test, no error.

The checkout's files (tracked and untracked-not-ignored: what a fresh clone plus your edits has, no
node_modules, no built extension) are copied to a temporary folder, so the run writes nothing here.
PATH is left as it is: its python3, jupyter and jupyter-builder are another Python's, which is the point.

The venv gets no system site-packages. Only torch and torchvision with what they require are lent to it
(symlinked into a folder its .pth file adds), so they are not downloaded again (gigabytes of CUDA
wheels); nbdetect, its other dependencies and the whole [test] extra are installed into the venv and
resolved from it, so an undeclared test dependency stops collection here as it does on a fresh machine.
"""
import os
import re
import shutil
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _checkout_copy(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _lend_torch(site: Path, lent: Path) -> list[str]:
    """Symlink torch, torchvision and the distributions they require (installed here) into ``lent``,
    added to the venv's sys.path by a .pth file. Returns the distributions lent."""
    from packaging.requirements import Requirement

    lent.mkdir()
    todo, seen = ["torch", "torchvision"], set()
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
        base = Path(dist.locate_file(""))
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            if (base / top).exists() and not (lent / top).exists():
                (lent / top).symlink_to(base / top)
    (site / "lent-torch.pth").write_text(f"{lent}\n")
    return sorted(seen)


def _collected(out: str) -> int:
    m = re.search(r"^(\d+) tests? collected in ", out, re.M)
    assert m, out[-3000:]
    return int(m.group(1))


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout")
def test_readme_commands_in_a_fresh_unactivated_venv(tmp_path):
    repo = _checkout_copy(tmp_path / "nbdetect")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    lent = _lend_torch(site, tmp_path / "lent")
    assert "torch" in lent and "pytest" not in lent and "hypothesis" not in lent, lent

    # not activated: no VIRTUAL_ENV, PATH without the venv's bin (python3 on PATH is not the venv's)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["NBDETECT_NO_CHROMIUM"] = "1"  # --collect-only needs no browser; no system package installed
    assert str(env_dir) not in env.get("PATH", "")

    # README command 1, its install half (the demo trains for minutes), with the venv's python
    readme = (repo / "README.md").read_text()
    install = re.search(r"^(python3 -m pip install -e \.)( && python3 -m nbdetect demo)$", readme, re.M)
    assert install, "README's set-up command changed: update this test"
    cmd = install.group(1).replace("python3", str(py), 1).split()
    subprocess.run(cmd, cwd=repo, env=env, check=True, timeout=1200)
    nothing_lent = subprocess.run([str(py), "-c", "import hypothesis"], cwd=env_dir, env=env, capture_output=True)
    assert nothing_lent.returncode != 0, "hypothesis (not a core dependency) is visible from outside the venv"
    where = subprocess.run([str(py), "-c", "import nbdetect; print(nbdetect.__file__)"], cwd=env_dir, env=env,
                           capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(repo), where.stdout

    # README command 2, collection only
    run = subprocess.run(["bash", "scripts/test.sh", "--collect-only", "-q"], cwd=repo,
                         env={**env, "PYTHON": str(py)}, capture_output=True, text=True, timeout=1800)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-5000:]
    summary = out.strip().splitlines()[-1]
    assert "error" not in summary.lower(), out[-5000:]
    assert "labextension build' is deprecated" not in out, out[-5000:]  # JupyterLab 4.6 says so of the old builder
    assert (repo / "nbdetect" / "labextension" / "package.json").exists(), out[-5000:]

    # every test: as many as this interpreter collects from the same files
    here = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert _collected(out) == _collected(here.stdout + here.stderr), (out[-3000:], here.stdout[-3000:])

    # the test extra is resolved from the venv
    for name in ("pytest", "hypothesis", "nbclient", "jupyterlab", "playwright"):
        loc = subprocess.run([str(py), "-c", f"import {name}; print({name}.__file__)"], env=env, cwd=env_dir,
                             capture_output=True, text=True, check=True).stdout.strip()
        assert Path(loc).is_relative_to(env_dir), (name, loc)
