"""In-memory embedding: ``satclip.embed(encoder, points)`` for arrays, tensors and (Geo)DataFrames."""

from __future__ import annotations

import numpy as np
import torch

from .sources import LAT_NAMES, LON_NAMES, pick_column


def _pick(columns, candidates, what):
    col = pick_column(columns, candidates)
    if col is None:
        raise ValueError(f"no {what} column among {list(columns)}; pass lon_col=/lat_col=")
    return col


def _as_lonlat(points, order, lon_col, lat_col) -> np.ndarray:
    if hasattr(points, "geometry") and hasattr(points.geometry, "x"):  # GeoDataFrame / GeoSeries
        geom = points.geometry
        if not (geom.geom_type == "Point").all():
            raise ValueError("GeoDataFrame geometries must all be points")
        return np.stack([geom.x.to_numpy(float), geom.y.to_numpy(float)], 1)
    if hasattr(points, "columns"):  # pandas DataFrame
        lon = lon_col or _pick(points.columns, LON_NAMES, "longitude")
        lat = lat_col or _pick(points.columns, LAT_NAMES, "latitude")
        return np.stack([points[lon].to_numpy(float), points[lat].to_numpy(float)], 1)
    arr = points.detach().cpu().double().numpy() if isinstance(points, torch.Tensor) else np.asarray(points, float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"points must have shape [N, 2], got {list(arr.shape)}")
    if order not in ("lonlat", "latlon"):
        raise ValueError(f"order must be 'lonlat' or 'latlon', got {order!r}")
    return np.ascontiguousarray(arr if order == "lonlat" else arr[:, ::-1])


def embed(encoder, points, *, chunk_points: int = 65536, device=None, out_dtype="float32", order: str = "lonlat",
          lon_col: str | None = None, lat_col: str | None = None, as_frame: bool = False,
          batch_size: int | None = None):
    """Embeds in-memory points with ``encoder`` in batches.

    Args:
        encoder: a ``satclip.LocationEncoder`` (e.g. from ``satclip.load``).
        points: ``[N, 2]`` numpy array or torch tensor of (lon, lat) degrees, **lon first** as in
            SatCLIP (``order="latlon"`` if yours are lat first); or a pandas DataFrame (columns
            ``lon``/``lat`` or ``longitude``/``latitude``, or ``lon_col``/``lat_col``); or a
            GeoDataFrame of points (x = lon, y = lat).
        chunk_points: points per forward pass (``batch_size``: its deprecated name).
        device: where to run (default: the encoder's device).
        out_dtype: ``"float32"`` (default), ``"float16"`` or ``"float64"``.
        as_frame: for a (Geo)DataFrame input, return a copy of it (same index, columns and
            geometry) with an ``embedding`` column holding each row's ``[D]`` array.
    Returns:
        ``[N, D]`` numpy array, or a torch tensor (on the input's device) for tensor input, or
        the frame with ``as_frame=True``.
    """
    if as_frame and not hasattr(points, "columns"):
        raise TypeError(f"as_frame=True needs a pandas DataFrame or GeoDataFrame, got {type(points).__name__}")
    lonlat = _as_lonlat(points, order, lon_col, lat_col)
    if str(np.dtype(out_dtype)) not in ("float16", "float32", "float64"):
        raise ValueError(f"out_dtype must be float16, float32 or float64, got {out_dtype!r} (int8 with scales is an "
                         "on-disk format of satclip embed / run_embedding)")
    if batch_size is not None:
        from ..options import renamed
        renamed("batch_size=", "chunk_points=", "satclip.embed")
        chunk_points = batch_size
    if isinstance(chunk_points, bool) or not isinstance(chunk_points, int) or chunk_points < 1:
        raise ValueError(f"chunk_points must be a positive int, got {chunk_points!r}")
    dev = torch.device(device) if device is not None else next(encoder.parameters()).device
    enc = encoder.to(dev).eval()
    dtype = next(enc.parameters()).dtype
    out = np.empty((len(lonlat), enc.dim_out), dtype=out_dtype)
    with torch.no_grad():
        for s in range(0, len(lonlat), chunk_points):
            x = torch.from_numpy(lonlat[s:s + chunk_points]).to(device=dev, dtype=dtype)
            out[s:s + chunk_points] = enc(x).cpu().numpy()
    if isinstance(points, torch.Tensor):
        return torch.from_numpy(out).to(points.device)
    if as_frame:
        if "embedding" in points.columns:
            raise ValueError("the frame already has an 'embedding' column; rename it or use as_frame=False")
        frame = points.copy()
        frame["embedding"] = list(out)
        return frame
    return out
