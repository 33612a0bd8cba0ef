"""The built documentation site, opened in a real browser (headless Chromium, Debian's package):
the start page and the API page of ``satclip.load`` render, with their text in the page the
browser built (not only in the HTML files), and a screenshot of each shows a page, not a blank.
Run by ``make docs`` after the build (it sets SATCLIP_DOCS_HTML); skipped elsewhere, saying so."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

HTML = os.environ.get("SATCLIP_DOCS_HTML")
pytestmark = pytest.mark.skipif(not HTML, reason="SATCLIP_DOCS_HTML is not set: `make docs` builds the site and runs this")


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "headless Chromium is needed to check the site (apt-get install chromium; `make docs` does)"
    return exe


def browse(page: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1280,1600", *args, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("page, must_show", [
    ("index.html", ["Fast, faithful SatCLIP location encoders", "Getting started", "Embedding at scale",
                    "API reference"]),
    ("reference/api.html", ["satclip.load", "satclip.embed", "satclip.to_torchgeo", "LocationEncoder"]),
    ("reference/cli.html", ["satclip embed", "--format", "--publish-partial"]),
])
def test_page_renders_in_a_browser(page, must_show, tmp_path):
    path = Path(HTML) / page
    assert path.exists(), f"{path} was not built"
    dom = browse(path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<main" in dom.stdout or "<article" in dom.stdout, "no page body in the rendered DOM"
    missing = [t for t in must_show if t not in dom.stdout]
    assert not missing, f"{page}: not in the rendered page: {missing}"
    shot = Path(HTML).parent / "screenshots" / (page.replace("/", "_") + ".png")
    shot.parent.mkdir(exist_ok=True)
    proc = browse(path, f"--screenshot={shot}")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (1600, 1280)
    dark = (pixels < 128).mean()  # text and headings: a rendered page has some, a blank or error page little
    assert 0.005 < dark < 0.5, f"{shot}: {dark:.4f} of the pixels are dark"
