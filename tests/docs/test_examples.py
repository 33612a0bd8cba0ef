"""Every ``python`` and ``bash`` code block of the README and the documentation pages runs, in
order, one page per test, in a fresh folder that holds what the pages say it holds (``sites.csv``,
the bundled model saved as ``l10.safetensors``, ``tiles/`` of 8-bit RGB GeoTIFF patches): a
renamed argument or function breaks this test, not the reader. Python blocks of a page share one
namespace (as a reader pasting them into one session); bash blocks run with ``-euo pipefail`` and
this environment's ``satclip`` and ``python`` first on ``PATH``. A python block whose first line
is ``# requires: MODULE`` is skipped where that module cannot be imported (torchgeo needs Python
>= 3.12; ``make test-torchgeo`` runs the same calls). ``text`` blocks (installs, commands that
need data these machines lack) are shown, not run."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md")
                                       if not {"_build", "_generated"} & set(p.relative_to(ROOT / "docs").parts))
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.S | re.M)


def blocks(page: Path) -> list[tuple[str, int, str]]:
    """``(language, line, source)`` of each fenced block of a page."""
    text = page.read_text()
    return [(m.group(1).strip(), text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text)]


def test_pages_found_and_blocks_parsed():
    assert len(PAGES) >= 10, PAGES
    langs = {lang for p in PAGES for lang, _, _ in blocks(p)}
    assert {"python", "bash"} <= langs, langs


def _fixtures(folder: Path) -> None:
    import pandas as pd
    import torch

    import satclip

    pd.DataFrame({"site": ["Seattle", "Paris", "Nairobi", "Sydney", "Quito", "Reykjavik"],
                  "lon": [-122.33, 2.35, 36.82, 151.21, -78.47, -21.94],
                  "lat": [47.61, 48.86, -1.29, -33.87, -0.18, 64.15]}).to_csv(folder / "sites.csv", index=False)
    satclip.save(satclip.default_model(), folder / "l10.safetensors")
    import rasterio
    from rasterio.transform import from_origin

    tiles = folder / "tiles"
    tiles.mkdir()
    rng = np.random.default_rng(0)
    for i, (lon, lat) in enumerate([(-100.0, 40.0), (20.0, 10.0), (140.0, -25.0), (-60.0, -5.0)]):
        with rasterio.open(tiles / f"tile_{i}.tif", "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8",
                           crs="EPSG:4326", transform=from_origin(lon - 0.16, lat + 0.16, 0.01, 0.01)) as f:
            f.write(rng.integers(0, 255, (3, 32, 32), dtype=np.uint8))
    del torch


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_code_blocks_run(page, tmp_path, monkeypatch):
    runnable = [(lang, line, src) for lang, line, src in blocks(page) if lang in ("python", "bash")]
    if not runnable:
        pytest.skip(f"{page.name} has no python or bash blocks")
    pytest.importorskip("rasterio")
    _fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               MPLBACKEND="Agg")
    namespace: dict = {"__name__": "__docs__"}
    skipped = []
    for lang, line, src in runnable:
        where = f"{page.relative_to(ROOT)}:{line}"
        if lang == "python":
            first = src.splitlines()[0] if src.strip() else ""
            if first.startswith("# requires:"):
                missing = [m for m in first.split(":", 1)[1].replace(",", " ").split() if importlib.util.find_spec(m) is None]
                if missing:
                    skipped.append(f"{where} (needs {', '.join(missing)})")
                    continue
            exec(compile(src, where, "exec"), namespace)  # noqa: S102  (the page's own example)
        else:
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", src], cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=900)
            assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    if skipped:
        print("not run here:", "; ".join(skipped))
