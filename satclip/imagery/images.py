"""Image patches from GeoTIFF files -> image embeddings, streamed through the same runner,
formats and manifest as ``satclip embed`` (resumable, atomic shards, ``--verify``).

Inputs (:class:`ImageFileSource`): a folder (every ``.tif`` / ``.tiff`` below it, sorted by
relative path: the S2-100K ``images/`` folder or any other) or a Parquet / CSV table with a
``path`` column (relative paths are taken from the table's folder). Row ``i`` is the ``i``-th
file; its id is ``i`` and its ``path`` column the file as given.

Each file is read with rasterio and turned into the model's input (:func:`to_model_input`):

* 12 bands for a 13-channel model: Sentinel-2 L2A as S2-100K stores it (B01..B12 without B10),
  digital numbers / 10000 with the zero B10 inserted, the original's preprocessing;
* as many bands as the model's ``in_channels``: the values times ``scale`` (default 1 / 10000,
  the Sentinel-2 digital-number convention; 1 / 255 for 8-bit RGB);
* any other band count is a wrong file.

Then the centre ``crop`` x ``crop`` pixels (the model's training crop: 224 for the released
models); a smaller image is a wrong file. The point of each row is the patch centre in
lon/lat (EPSG:4326) when the file is georeferenced, NaN otherwise.

A file that cannot be read or has the wrong band count or size is, with ``on_error="skip"``,
left out and named (log and manifest: ``shards[i]["skipped"]``), or, with ``on_error="fail"``
(default), stops the run with its name; it is never embedded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..embedding.sources import Chunk, Source
from ..embedding.state import state_dir
from ..model.bands import s2_to_13_bands

IMAGE_SUFFIXES = (".tif", ".tiff")
ON_ERROR = ("fail", "skip")


class ImageError(ValueError):
    """A file that is not a usable image patch (named in the message)."""


def _rasterio():
    try:
        import rasterio
    except ImportError:
        raise ImportError("reading GeoTIFF patches needs rasterio: pip install rasterio") from None
    return rasterio


def list_images(source) -> tuple[list[str], Path]:
    """(paths as given, base folder) from a folder or a table with a ``path`` column."""
    src = Path(os.fspath(source))
    if src.is_dir():
        files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and p.is_file())
        if not files:
            raise ValueError(f"{src}: no .tif / .tiff files in this folder")
        return files, src
    if not src.is_file():
        raise FileNotFoundError(f"image input not found: {src}")
    if src.suffix.lower() == ".csv":
        import pyarrow.csv as pcsv
        table = pcsv.read_csv(src)
    elif src.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq
        table = pq.read_table(src)
    else:
        raise ValueError(f"{src}: expected a folder of GeoTIFFs or a .parquet / .csv table with a 'path' column")
    if "path" not in table.column_names:
        raise ValueError(f"{src}: no 'path' column (columns: {table.column_names})")
    files = [str(p) for p in table.column("path").to_pylist()]
    if not files or any(p in ("", "None") for p in files):
        raise ValueError(f"{src}: the 'path' column is empty or has missing values")
    return files, src.parent


def to_model_input(bands: np.ndarray, in_channels: int, crop: int, scale: float, name: str) -> torch.Tensor:
    """``[B, H, W]`` raster -> ``[in_channels, crop, crop]`` float32 (see the module docstring)."""
    if bands.shape[0] == 12 and in_channels == 13:
        x = s2_to_13_bands(bands)
    elif bands.shape[0] == in_channels:
        x = torch.from_numpy(bands.astype(np.float32) * np.float32(scale))
    else:
        raise ImageError(f"{name}: {bands.shape[0]} bands, but the model takes {in_channels} channels"
                         + (" (or 12 Sentinel-2 L2A bands)" if in_channels == 13 else ""))
    h, w = x.shape[1:]
    if h < crop or w < crop:
        raise ImageError(f"{name}: {h} x {w} pixels, smaller than the model's {crop} x {crop} crop")
    top, left = (h - crop) // 2, (w - crop) // 2
    x = x[:, top:top + crop, left:left + crop]
    if not torch.isfinite(x).all():
        raise ImageError(f"{name}: NaN or inf pixel values")
    return x.contiguous()


def read_patch(path: Path, name: str) -> tuple[np.ndarray, float, float]:
    """(bands ``[B, H, W]``, centre lon, centre lat); lon/lat NaN when not georeferenced."""
    rasterio = _rasterio()
    try:
        with rasterio.open(path) as ds:
            bands = ds.read()
            lon = lat = float("nan")
            if ds.crs is not None and not ds.transform.is_identity:
                t = ds.transform  # the centre pixel corner (width / 2, height / 2) in the file's CRS
                x = t.c + t.a * ds.width / 2 + t.b * ds.height / 2
                y = t.f + t.d * ds.width / 2 + t.e * ds.height / 2
                from rasterio.warp import transform
                xs, ys = transform(ds.crs, "EPSG:4326", [x], [y])
                lon, lat = float(xs[0]), float(ys[0])
    except rasterio.errors.RasterioError as exc:
        raise ImageError(f"{name}: unreadable ({str(exc).splitlines()[0][:200]})") from None
    except OSError as exc:
        raise ImageError(f"{name}: unreadable ({exc})") from None
    return bands, lon, lat


class ImageFileSource(Source):
    """The files of :func:`list_images`, ``chunk_points`` images per chunk (a row per image)."""

    skip_setting = "on_error"
    row_noun = "file"

    @property
    def skips_rows(self) -> bool:
        return self.on_error == "skip"

    def __init__(self, source, in_channels: int, crop: int, scale: float = 1e-4, on_error: str = "fail",
                 chunk_points: int = 64, log=None):
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self._set_chunk_points(chunk_points)
        self.files, self.base = list_images(source)
        self.source, self.in_channels, self.crop, self.scale = str(source), in_channels, crop, float(scale)
        self.on_error, self.log = on_error, log or (lambda msg: None)

    def __len__(self) -> int:
        return len(self.files)

    def chunks(self, skip=frozenset()):
        import pyarrow as pa

        for i, start in enumerate(range(0, len(self.files), self.chunk_points)):
            if i in skip:
                continue
            names = self.files[start:start + self.chunk_points]
            ids, lon, lat, images, kept, skipped = [], [], [], [], [], []
            for j, name in enumerate(names):
                try:
                    bands, x, y = read_patch(self.base / name, name)
                    images.append(to_model_input(bands, self.in_channels, self.crop, self.scale, name))
                except ImageError as exc:
                    if self.on_error == "fail":
                        raise ImageError(f"{exc}; pass --on-error skip to leave such files out") from None
                    self.log(f"skipped {exc}")
                    skipped.append(name)
                    continue
                ids.append(start + j)
                lon.append(x)
                lat.append(y)
                kept.append(name)
            payload = torch.stack(images) if images else torch.zeros(0, self.in_channels, self.crop, self.crop)
            yield Chunk(i, start, np.asarray(ids, np.int64), np.asarray(lon, np.float64), np.asarray(lat, np.float64),
                        extra={"path": pa.array(kept, pa.string())}, payload=payload, skipped=skipped or None)

    def describe(self) -> dict:
        # the list's hash: a resume after files were added, removed or renamed is refused
        digest = hashlib.sha256("\n".join(self.files).encode()).hexdigest()
        return {"type": "images", "input": self.source, "files": len(self.files), "files_sha256": digest,
                "in_channels": self.in_channels, "crop": self.crop, "scale": self.scale, "on_error": self.on_error}

    def write_inputs(self, out) -> Path:
        """``inputs.txt`` in the output's run state (``.<name>.satclip/`` beside it): the files in row order (line ``i`` = id ``i``), which the
        Zarr output (ids, no paths) needs to name its rows."""
        path = state_dir(out) / "inputs.txt"
        tmp = path.with_name(".inputs.txt.tmp")
        tmp.write_text("\n".join(self.files) + "\n")
        tmp.replace(path)
        return path


class ImageEmbedder(torch.nn.Module):
    """The image tower of a :func:`satclip.load_model` model as a runner encoder: it embeds a
    chunk's images (``encode_chunk``) instead of its points."""

    def __init__(self, model):
        super().__init__()
        self.visual = model.visual
        self.in_channels = model.in_channels
        self.dim_out = _embed_dim(model)
        self._config = {"image_encoder": type(model.visual).__name__, "in_channels": model.in_channels,
                        "embed_dim": self.dim_out}

    def config(self) -> dict:
        return dict(self._config)

    def encode_chunk(self, chunk: Chunk) -> torch.Tensor:
        dev = next(self.visual.parameters()).device
        dtype = next(self.visual.parameters()).dtype
        with torch.no_grad():
            return self.visual(chunk.payload.to(dev, dtype)).float()


def _embed_dim(model) -> int:
    with torch.no_grad():
        return int(model.encode_location(torch.zeros(1, 2, dtype=torch.float64)).shape[1])


def image_crop(model) -> int:
    """The crop the model was trained on: a CLIP encoder's ``input_resolution``, else 224 (the
    released models: 224 x 224 random crops of the 256 x 256 S2-100K patches)."""
    return int(getattr(model.visual, "input_resolution", None) or 224)
