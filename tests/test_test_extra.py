"""`pip install -e ".[test]"` brings every test dependency, so `pytest tests` runs the suite that
`make test` runs instead of silently skipping a part of it: every third-party module the tests
import or skip on belongs to a distribution in the ``test`` extra (with the extras it names)."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# not test dependencies: the package itself, torch (a dependency), the GPU-only and optional peers
NOT_EXTRAS = {"satclip", "torch", "numpy", "safetensors", "torchgeo", "sphericart", "elapid", "sitecustomize",
              "conftest", "render_performance", "test_crash_resume", "pytest", "_pytest"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_extra_closure():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    want, todo = set(), ["test"]
    while todo:
        for req in extras[todo.pop()]:
            m = re.match(r"([A-Za-z0-9_.-]+)(\[([^\]]+)\])?", req)
            if _norm(m.group(1)) == "satclip":
                todo += m.group(3).split(",")
            else:
                want.add(_norm(m.group(1)))
    modules = set()
    for path in (ROOT / "tests").rglob("*.py"):
        text = path.read_text()
        modules |= {m.split(".")[0] for m in re.findall(r"importorskip\([\"']([\w.]+)", text)}
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    dists = packages_distributions()
    third_party = {m for m in modules - NOT_EXTRAS if m not in sys.stdlib_module_names and m in dists}
    missing = {m: dists[m] for m in third_party if not {_norm(d) for d in dists[m]} & want}
    assert not missing, f"modules the tests use whose distributions are not in the test extra: {missing}"
    assert {"zarr", "timm", "lightning", "ray", "healpy", "h3", "rasterio"} <= want
