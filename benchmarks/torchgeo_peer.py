"""torchgeo 0.10's SatCLIP location encoder, the peer a user would pick instead, for side-by-side
timings with the same weights: its released wheel is fetched with pip (``pip download --no-deps
--python-version 3.12 --only-binary=:all: torchgeo==0.10.1``, cached under
``benchmarks/.cache/``, never committed) and ``torchgeo/models/satclip.py`` is imported from it by
path (it needs einops and torchvision). Nothing of it is copied into this project.

``load()`` returns the module or raises ``Unavailable`` with the reason (no network to PyPI, no
einops/torchvision), which the benchmarks turn into a skip."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

VERSION = "0.10.1"
CACHE = Path(__file__).resolve().parent / ".cache" / f"torchgeo-{VERSION}"


class Unavailable(RuntimeError):
    pass


def _wheel() -> Path:
    found = sorted(CACHE.glob(f"torchgeo-{VERSION}-*.whl"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--python-version", "3.12",
                           "--only-binary=:all:", f"torchgeo=={VERSION}", "-d", str(CACHE)],
                          capture_output=True, text=True, timeout=300)
    found = sorted(CACHE.glob(f"torchgeo-{VERSION}-*.whl"))
    if proc.returncode or not found:
        raise Unavailable(f"could not fetch the torchgeo {VERSION} wheel: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return found[0]


def load():
    """torchgeo's ``torchgeo/models/satclip.py`` as a module."""
    for need in ("einops", "torchvision"):
        if importlib.util.find_spec(need) is None:
            raise Unavailable(f"torchgeo's SatCLIP needs {need}")
    source = CACHE / "satclip.py"
    if not source.exists():
        with zipfile.ZipFile(_wheel()) as z:
            source.write_bytes(z.read("torchgeo/models/satclip.py"))
    spec = importlib.util.spec_from_file_location("torchgeo_satclip", source)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def same_weights(ours, module):
    """torchgeo's ``SatCLIP`` holding ``ours``' weights (same ``nnet.*`` keys), in eval mode."""
    cfg = ours.config()
    peer = module.SatCLIP(legendre_polys=cfg["legendre_polys"], capacity=cfg["capacity"],
                          embed_dim=cfg["embed_dim"], num_hidden_layers=cfg["num_hidden_layers"])
    peer.nnet.load_state_dict(ours.nnet.state_dict())
    dtype = next(ours.parameters()).dtype
    return peer.to(dtype).eval()
