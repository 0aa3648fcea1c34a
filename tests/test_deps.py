"""Every third-party module the tests import is declared: in the core dependencies or the `[test]` extra.

`bash scripts/test.sh` installs `.[test]` and nothing else, so in a fresh virtualenv an undeclared import
(hypothesis was one) stops collection."""
import ast
import re
import sys
from importlib import metadata
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (requires-python >= 3.10): its backport, declared for it
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return {_norm(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) for r in reqs}


def _imported_modules() -> dict[str, set[str]]:
    """Top-level module -> test files importing it (import statements and pytest.importorskip("...") calls)."""
    local = ({p.stem for p in TESTS.rglob("*.py")} | {p.stem for p in (REPO / "benchmarks").glob("*.py")}
             | {"nbdetect", "jupyterlab_ext", "benchmarks"})  # the repo's own modules (benchmark scripts too)
    found: dict[str, set[str]] = {}
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_of_the_tests_is_a_declared_dependency():
    declared = _declared()
    providers = metadata.packages_distributions()
    missing = {}
    for module, files in sorted(_imported_modules().items()):
        dists = {_norm(d) for d in providers.get(module, [module])}
        if not dists & declared:
            missing[module] = (sorted(dists), sorted(files))
    assert not missing, f"imported by the tests but not in pyproject's dependencies or [test] extra: {missing}"


def test_the_check_sees_the_imports_it_is_meant_to_see():
    modules = _imported_modules()
    assert {"pytest", "hypothesis", "torch", "nbclient", "playwright"} <= set(modules), sorted(modules)
