"""`satclip embed --ray ADDRESS` on a real two-node Ray cluster on this machine (a head and a
worker node, ray.cluster_utils): every source gives the local run's output bit for bit (rows,
order, manifest); a run started locally is finished on Ray and the reverse; a killed encoder
actor and a driver killed with SIGKILL lose and duplicate nothing. The cluster is shut down at
the end."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import fault_env  # noqa: E402
from satclip.cli import main  # noqa: E402
from satclip.embedding.state import state_dir

SATCLIP = str(Path(sys.executable).with_name("satclip"))


@pytest.fixture(scope="module")
def hooks(tmp_path_factory):
    """The folder the Ray workers' fault hooks look in (tests/embedding/fault_hooks)."""
    return tmp_path_factory.mktemp("fault-hooks")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, hooks):
    from ray.cluster_utils import Cluster
    # Ray puts the driver's working directory first on the workers' path: started from the
    # repository root, the actors would import the source tree (no compiled kernels) instead of
    # the installed package (the executor refuses that; see test_actors_with_other_kernels_are_refused)
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray-cwd"))
    saved = dict(os.environ)
    os.environ.update(fault_env(hooks_dir=hooks))  # the nodes, and so the actors, start with the hooks
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=2)  # the worker node: both encoder actors fit on it, or one on each
    c.wait_for_nodes()
    os.environ.clear()
    os.environ.update(saved)
    ray.init(address=c.address, log_to_driver=False)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    yield c.address
    ray.shutdown()
    c.shutdown()
    os.chdir(here)


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    d = tmp_path_factory.mktemp("pts")
    rng = np.random.default_rng(0)
    n = 700
    lat = np.concatenate([[90, -90, 0], rng.uniform(-90, 90, n - 3)])
    lon = np.concatenate([[0, 180, -180], rng.uniform(-180, 180, n - 3)])
    pq.write_table(pa.table({"site": [f"s{i}" for i in range(n)], "lon": lon, "lat": lat}), d / "pts.parquet")
    return d / "pts.parquet"


def _read(out: Path, fmt: str):
    if fmt == "parquet":
        t = pq.read_table(out)
        return {c: t.column(c).to_numpy(zero_copy_only=False) for c in t.column_names}
    import zarr
    g = zarr.open(str(out), mode="r")
    return {k: g[k][...] for k in g.array_keys()}


def _manifest(out: Path) -> dict:
    man = json.loads((state_dir(out) / "manifest.json").read_text())
    return {k: v for k, v in man.items() if k != "satclip_version"}


def _same(a: Path, b: Path, fmt: str) -> None:
    ra, rb = _read(a, fmt), _read(b, fmt)
    assert ra.keys() == rb.keys()
    for k in ra:
        if ra[k].dtype == object:
            assert all(np.array_equal(x, y) for x, y in zip(ra[k], rb[k])), k
        else:
            assert np.array_equal(ra[k], rb[k]), k  # bit for bit, in the same order
    ma, mb = _manifest(a), _manifest(b)
    if fmt == "parquet":  # a shard's bytes: the same table written by the same code
        assert ma == mb
    else:
        assert {k: v for k, v in ma.items() if k != "shards"} == {k: v for k, v in mb.items() if k != "shards"}


SOURCES = {"grid": ["--grid", "10"], "land": ["--grid", "5", "--land-only"], "healpix": ["--healpix", "8"],
           "h3": ["--h3", "1"]}


@pytest.mark.parametrize("kind", list(SOURCES) + ["points"])
def test_every_source_on_ray_equals_the_local_run(tmp_path, cluster, points, kind):
    need = {"land": "global_land_mask", "healpix": "healpy", "h3": "h3"}.get(kind)
    if need:
        pytest.importorskip(need)
    src = ["--points", str(points), "--id-col", "site", "--keep-cols", "all"] if kind == "points" else SOURCES[kind]
    fmt = "zarr" if kind == "grid" else "parquet"
    if fmt == "zarr":
        pytest.importorskip("zarr")
    args = ["embed", *src, "--chunk-points", "200", "--format", fmt, "--quiet"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--ray", cluster, "--ray-actors", "2"]) == 0
    _same(tmp_path / "local", tmp_path / "ray", fmt)
    assert main([*args, "--out", str(tmp_path / "ray"), "--ray", cluster, "--verify"]) == 0  # --verify on either


def test_started_locally_finished_on_ray_and_the_reverse(tmp_path, cluster):
    args = ["embed", "--grid", "6", "--chunk-points", "300", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    env = fault_env(crash_at="manifest:4")  # SIGKILL inside the 4th manifest write
    for first, then in ((["--out", str(tmp_path / "a")], ["--ray", cluster]),
                        (["--out", str(tmp_path / "b"), "--ray", cluster], [])):
        proc = subprocess.run([SATCLIP, *args, *first], env=env, capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        out = Path(first[1])
        done = _manifest(out)["done"]
        assert 0 < len(done) < 6
        assert main([*args, *first[:2], *then]) == 0
        _same(tmp_path / "whole", out, "parquet")


def test_a_killed_actor_loses_and_duplicates_nothing(tmp_path, cluster, hooks):
    args = ["embed", "--grid", "6", "--chunk-points", "300", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    (hooks / "actor-exit-at").write_text("2")  # the actor given chunk 2 exits before writing it
    try:
        assert main([*args, "--out", str(tmp_path / "ray"), "--ray", cluster, "--ray-actors", "2"]) == 0
    finally:
        (hooks / "actor-exit-at").unlink()
    assert (state_dir(tmp_path / "ray") / "test-actor-exit-2").exists()  # it did die
    assert sorted(p.name for p in (tmp_path / "ray").glob("*.parquet")) == [f"part-{i:06d}.parquet" for i in range(6)]
    assert not list((tmp_path / "ray").glob(".*.tmp"))
    _same(tmp_path / "local", tmp_path / "ray", "parquet")


def test_ray_refusals(tmp_path):
    with pytest.raises(SystemExit, match="--ray-actors and --ray-threads apply to --ray"):
        main(["embed", "--grid", "30", "--out", str(tmp_path / "x"), "--ray-actors", "2", "--quiet"])


def test_actors_with_other_kernels_are_refused(tmp_path, cluster, monkeypatch):
    """The driver runs the compiled kernels; actors that report otherwise are refused, named."""
    from satclip import ops
    monkeypatch.setattr(ops, "extension_loaded", lambda: not ops.extension.extension_loaded())
    with pytest.raises(SystemExit, match="the Ray actors run satclip from .* their rows would differ"):
        main(["embed", "--grid", "30", "--out", str(tmp_path / "x"), "--ray", cluster, "--quiet"])
