"""The README stays short and current: at most about 150 lines, its headline table equal to the
rendering of the stored result it names (``benchmarks/results/vs-torchgeo-amd-avx512.json``), and
the date and machine it states are that result's."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import render_performance as rp  # noqa: E402


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= 150, f"README.md has {n} lines; the detail belongs in docs/"


def test_headline_table_is_rendered_from_the_stored_result():
    readme = (ROOT / "README.md").read_text()
    assert readme == rp.readme_with_table(readme), \
        "the README's table differs from the stored result: run `python docs/_ext/render_performance.py --readme`"
    d = json.loads(rp.README_TABLE.read_text())
    assert d["date"] in readme and d["cpu"]["model"] in readme, (d["date"], d["cpu"]["model"])


def test_two_commands_are_the_makefiles():
    readme, makefile = (ROOT / "README.md").read_text(), (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in readme and f"\n{target}:" in makefile, target


def test_local_paths_it_names_exist():
    """Images and repository paths the README points at exist (the demo picture, the results)."""
    import re
    readme = (ROOT / "README.md").read_text()
    paths = set(re.findall(r"\]\(([^)#:]+)\)", readme)) | set(re.findall(r"`((?:docs|benchmarks|tests|satclip)/[^`\s]+)`", readme))
    assert "docs/_static/demo-map.png" in paths
    built = ("docs/_build",)  # what `make docs` makes: not in a fresh clone
    missing = sorted(p for p in paths if not p.startswith(built) and not (ROOT / p).exists())
    assert not missing, missing
