"""The package layout: imports point down the layers only (kernels <- ops <- options <- functional <- nn <-
checkpoint <- model / embedding / evaluation <- training / imagery <- cli), siblings of one layer do not
import each other (so inference, ``imagery``, never imports ``training``), and nothing inside the package
imports the top-level ``satclip`` (the public API)."""

import ast
from pathlib import Path

import pytest

import satclip

PKG = Path(satclip.__file__).resolve().parent

# Rank of each top-level part of the package; an import may only reach a part of lower rank,
# or the same part. Parts of equal rank are siblings and may not import each other.
RANK = {"_version": 0, "_limits": 0, "data": 0, "ops": 1, "options": 2, "functional": 3, "plotting": 3, "nn": 4, "checkpoint": 5,
        "model": 6, "embedding": 6, "evaluation": 6, "training": 7, "imagery": 7, "cli": 8}
TOP = ("__init__", "__main__")  # the public API: may import anything, imported by no one inside


def _part(module: str) -> str:
    """``satclip.embedding.runner`` -> ``embedding``; ``satclip`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[str]:
    """Absolute names of the ``satclip`` modules that ``source`` (the module ``module``) imports,
    at any depth (function-level imports included)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == "satclip"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "satclip":
                continue
            if target == "satclip":  # `from satclip import x`: a part, or a name of the public API
                out += [f"satclip.{a.name}" if a.name in RANK else "satclip" for a in node.names]
            elif node.module is None:  # `from . import x`
                out += [f"{target}.{a.name}" for a in node.names]
            else:
                out.append(target)
    return out


def violations(source: str, module: str, is_package: bool) -> list[str]:
    src = _part(module)
    bad = []
    for target in imported_modules(source, module, is_package):
        dst = _part(target)
        if dst == src or src in TOP:
            continue
        if dst in TOP:
            bad.append(f"{module} imports the top-level package ({target}); import the layer it needs")
        elif dst not in RANK or src not in RANK:
            bad.append(f"{module} -> {target}: part not in the layer table {sorted(RANK)}")
        elif RANK[dst] >= RANK[src]:
            kind = "a sibling" if RANK[dst] == RANK[src] else "a higher layer"
            bad.append(f"{module} ({src}) imports {kind}: {target} ({dst})")
    return bad


def test_every_part_is_in_the_layer_table():
    parts = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert parts - set(TOP) <= set(RANK), f"new top-level part(s) {parts - set(TOP) - set(RANK)}: add to RANK"


def test_imports_point_down_the_layers():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        module = _module_name(path, PKG)
        bad += violations(path.read_text(), module, path.name == "__init__.py")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module,source,is_package,expect", [
    ("satclip.ops.schemas", "from ..embedding import runner", False, "a higher layer"),
    ("satclip.ops.schemas", "from satclip.cli import main", False, "a higher layer"),
    ("satclip.embedding.runner", "from ..evaluation import run", False, "a sibling"),
    ("satclip.imagery.loading", "from ..training.lightning import SatCLIPDataModule", False, "a sibling"),
    ("satclip.training.run", "from ..model import SatCLIP", False, None),
    ("satclip.imagery.images", "from ..model.bands import s2_to_13_bands", False, None),
    ("satclip.nn", "import satclip", True, "top-level package"),
    ("satclip.embedding", "from .. import load", True, "top-level package"),
    ("satclip.nn.siren", "def f():\n    from ..checkpoint import load\n", False, "a higher layer"),
    ("satclip.embedding.runner", "from .sinks import make_sink\nfrom ..checkpoint import load", False, None),
    ("satclip.cli.embed", "from ..embedding import runner\nfrom ..ops import ops", False, None),
])
def test_the_checker_itself(module, source, is_package, expect):
    found = violations(source, module, is_package)
    if expect is None:
        assert found == []
    else:
        assert len(found) == 1 and expect in found[0], found
